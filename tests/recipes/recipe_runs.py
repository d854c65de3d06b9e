"""Where the SynthSpeech recipes are, and how the recipe tests run them (tiny settings, one thread)."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import torch

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech"
# One thread: these tests share the machine with other work, and the models are tiny anyway.
RECIPE_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
STEPS_PER_EPOCH, EPOCHS = 2, 2
TINY_TRAINING = (
    "--number_of_epochs",
    EPOCHS,
    "--steps_per_epoch",
    STEPS_PER_EPOCH,
    "--batch_size",
    4,
    "--noprogressbar",
)
CORPUS = {"KWS": "words/target", "intent": "intent", "emotion": "emotion", "ASR": "asr/target"}
# A tiny Whisper-architecture encoder for the hub-format source stage (ctc_whisper.yaml), and the hub id it is
# also cached as.
HF_TINY = ("--d_model", 32, "--encoder_layers", 2, "--attention_heads", 2, "--ffn_dim", 64)
HF_CACHE_ID = "synth-test/tiny-whisper"


def read_summary(run_folder):
    with open(run_folder / "summary.json") as f:
        return json.load(f)


def checkpoints(run_folder, name):
    """A module's state dict in each checkpoint the run kept (the best and the last), oldest first."""
    paths = sorted((run_folder / "save").glob(f"CKPT+*/{name}.ckpt"))
    assert paths, f"no {name}.ckpt in {run_folder / 'save'}"
    return [torch.load(path, weights_only=True) for path in paths]


def checksums(*folders):
    """``{path: sha256}`` of every file under the folders, and each entry's permission bits."""
    found = {}
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            found[dirpath] = stat.S_IMODE(os.stat(dirpath).st_mode)
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    found[path] = (hashlib.sha256(f.read()).hexdigest(), stat.S_IMODE(os.stat(path).st_mode))
    return found


def run_sbx(*args, timeout=900):
    """``sbx <args>`` in a subprocess with one thread; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "speechbrain_xfer.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=RECIPE_ENV,
        timeout=timeout,
    )
