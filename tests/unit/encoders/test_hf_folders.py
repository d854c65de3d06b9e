"""Hub-format folders made here: random encoders, atomic saves, the HF cache layout (no network)."""

import json
import os

import pytest
import torch
from tiny_hf import SSL_CONFIG, WHISPER_CONFIG
from transformers import AutoModel

from speechbrain_xfer.encoders import HFEncoder
from speechbrain_xfer.encoders.hf_folders import (
    FOLDER_FILES,
    add_to_hf_cache,
    is_complete,
    save_encoder_folder,
    write_random_encoder,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:`gradient_checkpointing_disable` is deprecated:FutureWarning"),
    pytest.mark.usefixtures("offline"),
]

CONFIGS = {"wav2vec2": SSL_CONFIG, "whisper": WHISPER_CONFIG}


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_random_encoder_folder_loads_in_transformers_and_hf_encoder(tmp_path, model_type):
    folder = write_random_encoder(tmp_path / "init", model_type, seed=3, config=CONFIGS[model_type])
    assert is_complete(folder)
    with open(os.path.join(folder, "config.json")) as f:
        assert json.load(f)["model_type"] == model_type
    model = AutoModel.from_pretrained(folder)
    encoder = HFEncoder(folder)
    reference = model.encoder if model_type == "whisper" else model
    loaded = encoder.model.encoder if model_type == "whisper" else encoder.model
    for key, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_random_encoder_is_seeded_and_kept_on_resume(tmp_path):
    first = write_random_encoder(tmp_path / "a", "wav2vec2", seed=1, config=SSL_CONFIG)
    again = write_random_encoder(tmp_path / "b", "wav2vec2", seed=1, config=SSL_CONFIG)
    other = write_random_encoder(tmp_path / "c", "wav2vec2", seed=2, config=SSL_CONFIG)
    weights = {
        name: AutoModel.from_pretrained(f).state_dict() for name, f in (("a", first), ("b", again), ("c", other))
    }
    key = "encoder.layers.0.attention.k_proj.weight"
    assert torch.equal(weights["a"][key], weights["b"][key])
    assert not torch.equal(weights["a"][key], weights["c"][key])

    stamp = os.path.getmtime(os.path.join(first, "model.safetensors"))
    assert write_random_encoder(first, "wav2vec2", seed=5, config=SSL_CONFIG) == first
    assert os.path.getmtime(os.path.join(first, "model.safetensors")) == stamp, "a complete folder is kept"
    with pytest.raises(ValueError, match="differs in \\['hidden_size'\\]"):
        write_random_encoder(first, "wav2vec2", config={**SSL_CONFIG, "hidden_size": 48})


def test_save_is_atomic_and_carries_extra_files(tmp_path, tiny_models):
    encoder = HFEncoder(tiny_models["whisper"][0])
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an earlier export")
    chars = tmp_path / "chars.txt"
    chars.write_text("a b")
    save_encoder_folder(
        encoder.model,
        encoder.wrapper.feature_extractor,
        folder,
        {"ctc_head.ckpt": {"w": torch.ones(2)}, "tokenizer.ckpt": chars},
    )
    names = set(os.listdir(folder))
    assert names == {*FOLDER_FILES, "ctc_head.ckpt", "tokenizer.ckpt"}, "the old folder is replaced whole"
    assert not os.path.exists(f"{folder}.partial") and not os.path.exists(f"{folder}.old")
    assert torch.equal(torch.load(folder / "ctc_head.ckpt")["w"], torch.ones(2))
    reloaded = HFEncoder(folder)
    for key, tensor in encoder.model.state_dict().items():
        assert torch.equal(reloaded.model.state_dict()[key], tensor), key


def test_hub_id_resolves_offline_from_the_cache_layout(tmp_path, tiny_models):
    folder, saved = tiny_models["wav2vec2"]
    cache = tmp_path / "hub"
    snapshot = add_to_hf_cache(folder, "synth-org/tiny-w2v", cache_dir=cache)
    repo = cache / "models--synth-org--tiny-w2v"
    assert (repo / "refs" / "main").read_text() == os.path.basename(snapshot)
    assert add_to_hf_cache(folder, "synth-org/tiny-w2v", cache_dir=cache) == snapshot, "same files, same revision"

    encoder = HFEncoder("synth-org/tiny-w2v", save_path=cache)
    key = "encoder.layers.1.attention.k_proj.weight"
    assert torch.equal(encoder.model.state_dict()[key], saved[key])
    assert torch.equal(AutoModel.from_pretrained("synth-org/tiny-w2v", cache_dir=cache).state_dict()[key], saved[key])

    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        add_to_hf_cache(tmp_path, "synth-org/empty", cache_dir=cache)
    with pytest.raises(ValueError, match="<org>/<name>"):
        add_to_hf_cache(folder, "no-org", cache_dir=cache)


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_not_pretrained_is_the_same_architecture_with_new_weights(tiny_models, family):
    folder, saved = tiny_models[family]
    torch.manual_seed(7)
    scratch = HFEncoder(folder, pretrained=False).model.state_dict()
    torch.manual_seed(7)
    again = HFEncoder(folder, pretrained=False).model.state_dict()
    pretrained = HFEncoder(folder).model.state_dict()
    assert set(scratch) == set(pretrained)
    attention = "self_attn" if family == "whisper" else "attention"
    key = f"encoder.layers.0.{attention}.k_proj.weight"
    assert not torch.equal(scratch[key], saved[key]), "weights are new"
    assert torch.equal(scratch[key], again[key]), "drawn from torch's seeded generator"


def test_an_encoder_built_from_its_configs_alone_takes_the_saved_weights(tiny_models):
    folder, saved = tiny_models["whisper"]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(folder, "preprocessor_config.json")) as f:
        extractor = json.load(f)
    encoder = HFEncoder(config=config, feature_extractor=extractor, layer_sum=True, whisper_window="batch")
    assert encoder.source == "<config>" and encoder.layer_sum and encoder.whisper_window == "batch"
    reference = HFEncoder(folder, layer_sum=True, whisper_window="batch")
    # What an export's Pretrainer does: the weights come from a checkpoint afterwards.
    encoder.load_state_dict(reference.state_dict())
    wavs = torch.randn(1, 4000)
    torch.testing.assert_close(encoder(wavs), reference(wavs))
    with pytest.raises(ValueError, match="needs a source"):
        HFEncoder()
