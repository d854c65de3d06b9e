"""Sharing trained models: export to SpeechBrain's inference format, model cards, hub upload, inference on files."""
