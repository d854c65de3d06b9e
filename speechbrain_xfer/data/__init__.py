"""Data tools: the SynthSpeech corpus, k-shot subsets, audio checks."""
