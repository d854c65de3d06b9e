"""Where the SynthSpeech recipes are, and how the recipe tests run them (tiny settings, one thread)."""

import os
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech"
# One thread: these tests share the machine with other work, and the models are tiny anyway.
RECIPE_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
STEPS_PER_EPOCH, EPOCHS = 2, 2
TINY_TRAINING = ("--number_of_epochs", EPOCHS, "--steps_per_epoch", STEPS_PER_EPOCH, "--batch_size", 4,
                 "--noprogressbar")  # fmt: skip
CORPUS = {"KWS": "words/target", "intent": "intent", "emotion": "emotion", "ASR": "asr/target"}
