"""Recipe runs as subprocesses, and the pretrained encoder that the task recipes start from (built once)."""

import csv
import os
import subprocess
import sys

import pytest
import torch
from recipe_runs import CORPUS, HF_CACHE_ID, HF_TINY, RECIPE_ENV, RECIPES, TINY_TRAINING


@pytest.fixture(scope="session")
def run_recipe():
    """Runs ``python train.py hparams/<yaml> <args>`` (or another ``script``) in a recipe's folder; returns the
    CompletedProcess."""

    def run(recipe, yaml_name, *args, timeout=300, script="train.py", env=None):
        command = [sys.executable, script, f"hparams/{yaml_name}", *map(str, args)]
        return subprocess.run(
            command,
            cwd=RECIPES / recipe,
            env={**RECIPE_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

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
    result = run_recipe(
        "pretrain",
        "ctc_conv.yaml",
        "--data_folder",
        data,
        "--train_csv",
        train_csv,
        "--output_folder",
        out,
        "--number_of_epochs",
        1,
        "--noprogressbar",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "encoder"


@pytest.fixture(scope="session")
def hf_source_encoder(tiny_corpus, pretrained_encoder, tmp_path_factory, run_recipe):
    """``(export folder, HF cache)`` of the hub-format source stage: a tiny Whisper-architecture encoder, one
    epoch of CTC on 32 utterances of asr/source with the pretrained encoder's posteriors distilled into it, also
    put in an HF cache as the hub id :data:`HF_CACHE_ID`."""
    root, _ = tiny_corpus
    data = root / "asr" / "source"
    work = tmp_path_factory.mktemp("pretrain-hf")
    train_csv = work / "train32.csv"
    _slice_manifest(data / "train.csv", train_csv, rows=32)
    out, cache = work / "out", work / "hub"
    result = run_recipe(
        "pretrain",
        "ctc_whisper.yaml",
        "--data_folder",
        data,
        "--train_csv",
        train_csv,
        "--pretrained_source",
        pretrained_encoder,
        "--output_folder",
        out,
        "--number_of_epochs",
        1,
        "--fisher_batches",
        2,
        "--hf_cache_id",
        HF_CACHE_ID,
        *HF_TINY,
        "--noprogressbar",
        env={"HF_HUB_CACHE": str(cache)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "encoder", cache


@pytest.fixture(scope="session")
def words_encoder(tiny_corpus, pretrained_encoder, tmp_path_factory, run_recipe):
    """The export folder of the source-words stage: the pretrained encoder fine-tuned a few steps on words/source."""
    root, _ = tiny_corpus
    out = tmp_path_factory.mktemp("pretrain-words") / "out"
    result = run_recipe(
        "pretrain",
        "words_conv.yaml",
        "--data_folder",
        root / "words" / "source",
        "--pretrained_source",
        pretrained_encoder,
        "--output_folder",
        out,
        *TINY_TRAINING,
        "--fisher_batches",
        2,
        script="train_words.py",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "encoder"


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory):
    """A 2-layer, 32-dim wav2vec 2.0 saved as a hub repo holds it (config, weights, preprocessor config): what a
    recipe that names ``facebook/wav2vec2-base`` loads in the tests, offline."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def trained(tiny_corpus, pretrained_encoder, tmp_path_factory, run_recipe):
    """``trained(task, method)``: the folder holding ``run``, the output folder of that SynthSpeech recipe run
    (a few steps on the tiny corpus), run once per session."""
    root, _ = tiny_corpus
    folders = {}

    def get(task, method):
        if (task, method) not in folders:
            out = tmp_path_factory.mktemp(f"{task}-{method}")
            args = ["--data_folder", root / CORPUS[task], "--output_folder", out / "run", *TINY_TRAINING]
            if method != "scratch":
                args += ["--pretrained_source", pretrained_encoder]
            # This run's own cache, not the corpus-wide default; ASR caches nothing.
            if method == "frozen" and task != "ASR":
                args += ["--feature_cache", out / "feature_cache"]
            result = run_recipe(task, f"{method}.yaml", *args)
            assert result.returncode == 0, result.stderr[-4000:]
            folders[task, method] = out
        return folders[task, method]

    return get


@pytest.fixture(scope="session")
def ge2e_source(tmp_path_factory):
    """The GE2E speaker encoder's weights (the resemblyzer package's) as a pretrained_source folder."""
    from speechbrain_xfer.encoders.ge2e import resemblyzer_weights, write_pretrained_folder

    try:
        weights = resemblyzer_weights()
    except FileNotFoundError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(err))
        pytest.skip(str(err))
    folder = tmp_path_factory.mktemp("ge2e")
    write_pretrained_folder(folder, weights)
    return folder
