"""Recipe runs as subprocesses, and the pretrained encoder that the task recipes start from (built once)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech"
# One thread: these tests share the machine with other work, and the models are tiny anyway.
RECIPE_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def run_recipe():
    """Runs ``python train.py hparams/<yaml> <args>`` in a recipe's folder; returns the CompletedProcess."""

    def run(recipe, yaml_name, *args, timeout=300):
        command = [sys.executable, "train.py", f"hparams/{yaml_name}", *map(str, args)]
        return subprocess.run(command, cwd=RECIPES / recipe, env=RECIPE_ENV, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    return run


def _slice_manifest(source, target, rows):
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        fieldnames, kept = reader.fieldnames, [row for _, row in zip(range(rows), reader)]
    with open(target, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)


@pytest.fixture(scope="session")
def pretrained_encoder(tiny_corpus, tmp_path_factory, run_recipe):
    """The export folder of the pretraining recipe: one epoch of CTC on 32 utterances of asr/source."""
    root, _ = tiny_corpus
    data = root / "asr" / "source"
    work = tmp_path_factory.mktemp("pretrain")
    train_csv = work / "train32.csv"
    _slice_manifest(data / "train.csv", train_csv, rows=32)
    out = work / "out"
    result = run_recipe("pretrain", "ctc_conv.yaml", "--data_folder", data, "--train_csv", train_csv,
                        "--output_folder", out, "--number_of_epochs", 1, "--noprogressbar")  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "encoder"


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory):
    """A 2-layer, 32-dim wav2vec 2.0 saved as a hub repo holds it (config, weights, preprocessor config): what a
    recipe that names ``facebook/wav2vec2-base`` loads in the tests, offline."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2)  # fmt: skip
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder
