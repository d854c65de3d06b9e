"""output_layer: auto on the tiny corpus's keywords, with a tiny hub-format Whisper encoder of random weights."""

import csv
import os

import pytest
import torch

from speechbrain_xfer.encoders.hf import HFEncoder
from speechbrain_xfer.encoders.hf_folders import encoder_extras, load_encoder_extras, write_random_encoder
from speechbrain_xfer.recipe_config import RecipeConfigError
from speechbrain_xfer.transferability.layer_choice import choose_output_layers

TINY_WHISPER = dict(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return str(write_random_encoder(tmp_path_factory.mktemp("source") / "whisper", "whisper", config=TINY_WHISPER))


def recipe(tiny_corpus, encoder, folder, targets=("word",)):
    data = tiny_corpus[0] / "words" / "target"
    return {
        "modules": {"encoder": encoder},
        "train_csv": str(data / "train.csv"),
        "data_folder": str(data),
        "targets": list(targets),
        "output_folder": str(folder / "run"),
        "save_folder": str(folder / "run" / "save"),
        "feature_cache": str(folder / "cache"),
    }


def test_the_chosen_layer_is_the_best_by_logme_and_never_a_constant_one(tiny_corpus, source, tmp_path):
    encoder = HFEncoder(source, output_layer="auto", whisper_window="batch")
    # A final layer norm with zero gain makes the top hidden state the same vector for every input.
    with torch.no_grad():
        encoder.model.encoder.layer_norm.weight.zero_()
    chosen = choose_output_layers(recipe(tiny_corpus, encoder, tmp_path), progress=False)
    with open(tmp_path / "run" / "output_layer.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    logme = [float(row["logme"]) for row in rows]
    assert [int(row["layer"]) for row in rows] == [0, 1, 2]
    assert chosen == {"encoder": logme.index(max(logme))} and encoder.selected_layer == chosen["encoder"]
    assert [row["chosen"] for row in rows].count("True") == 1 and rows[chosen["encoder"]]["chosen"] == "True"
    assert logme[2] == min(logme) and chosen["encoder"] != 2, logme
    assert encoder.training, "the encoder goes back to the mode it was in"


def test_the_choice_is_kept_by_the_exported_encoder_files(tiny_corpus, source, tmp_path):
    encoder = HFEncoder(source, output_layer="auto", whisper_window="batch")
    chosen = choose_output_layers(recipe(tiny_corpus, encoder, tmp_path), progress=False)["encoder"]
    torch.save(encoder_extras(encoder), tmp_path / "encoder.ckpt")
    rebuilt = HFEncoder(source, output_layer="auto", whisper_window="batch")
    load_encoder_extras(rebuilt, tmp_path / "encoder.ckpt")
    assert rebuilt.selected_layer == chosen


def test_a_second_choice_reads_the_cache_and_agrees(tiny_corpus, source, tmp_path):
    first = choose_output_layers(
        recipe(tiny_corpus, HFEncoder(source, output_layer="auto", whisper_window="batch"), tmp_path), progress=False
    )
    cached = sum(len(files) for _, _, files in os.walk(tmp_path / "cache"))
    again = choose_output_layers(
        recipe(tiny_corpus, HFEncoder(source, output_layer="auto", whisper_window="batch"), tmp_path), progress=False
    )
    assert again == first and cached > 0
    assert sum(len(files) for _, _, files in os.walk(tmp_path / "cache")) == cached


def test_fixed_layers_are_left_alone_and_auto_without_labels_is_an_error(tiny_corpus, source, tmp_path):
    fixed = HFEncoder(source, output_layer=1, whisper_window="batch")
    assert choose_output_layers(recipe(tiny_corpus, fixed, tmp_path), progress=False) == {}
    assert not (tmp_path / "run" / "output_layer.csv").exists()
    auto = HFEncoder(source, output_layer="auto", whisper_window="batch")
    with pytest.raises(RecipeConfigError, match="no `targets`"):
        choose_output_layers(recipe(tiny_corpus, auto, tmp_path, targets=()), progress=False)
