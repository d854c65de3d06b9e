"""speechbrain_xfer: transfer learning for speech, as a SpeechBrain plugin."""

__version__ = "0.1.0"
