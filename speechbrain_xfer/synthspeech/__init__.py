"""SynthSpeech: the offline speech corpus made with espeak-ng, its voices, texts, acoustics and k-shot subsets."""
