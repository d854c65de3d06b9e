"""Helpers of the real-dataset recipe tests: loading a recipe's prepare script, reading manifests, running a
recipe offline. The tiny wav2vec 2.0 that stands in for the hub model is the ``tiny_wav2vec2`` fixture
(conftest.py)."""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY_TRAINING = (
    "--number_of_epochs",
    1,
    "--steps_per_epoch",
    2,
    "--batch_size",
    2,
    "--num_workers",
    0,
    "--noprogressbar",
)


def load_module(path):
    """Imports a recipe script (recipes are not a package) by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_offline(recipe, yaml_name, *args, hf_home):
    """Runs ``python train.py hparams/<yaml_name> <args>`` in ``recipe`` with the hub switched off."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(hf_home),
    }
    command = [sys.executable, "train.py", f"hparams/{yaml_name}", *map(str, args)]
    return subprocess.run(command, cwd=recipe, env=env, capture_output=True, text=True, timeout=300)
