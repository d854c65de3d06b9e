"""HFEncoder on tiny wav2vec 2.0, HuBERT, WavLM and Whisper models saved as hub-style folders (no network)."""

import copy
import json
import math
import os
import shutil

import pytest
import torch
import torch.nn.functional as F
from tiny_hf import DIM, FAMILIES, LAYERS

import speechbrain_xfer.encoders.hf_backbone as hf_module
from speechbrain_xfer.encoders import HFEncoder, PretrainedSourceError

# SpeechBrain's wrapper calls a method transformers 5.x deprecates; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`gradient_checkpointing_disable` is deprecated:FutureWarning"),
    pytest.mark.usefixtures("offline"),
]

SAMPLES = 4000  # 0.25 s at 16 kHz
# Conv front end: kernel 10 stride 5, then kernel 8 stride 4 -> 198 frames for 4000 samples.
SSL_FRAMES = ((SAMPLES - 10) // 5 + 1 - 8) // 4 + 1
WHISPER_FRAMES = math.ceil(SAMPLES / 320)  # hop 160, then conv stride 2


def frames(family):
    return WHISPER_FRAMES if family == "whisper" else SSL_FRAMES


def batch():
    torch.manual_seed(0)
    return torch.randn(2, SAMPLES), torch.tensor([1.0, 0.75])


@pytest.mark.parametrize("family", FAMILIES)
def test_output_is_batch_frames_dim(tiny_models, family):
    encoder = HFEncoder(tiny_models[family][0])
    wavs, lens = batch()
    out = encoder(wavs, lens)
    assert out.shape == (2, frames(family), DIM)
    assert encoder.output_dim == DIM
    assert encoder.num_layers == LAYERS
    assert encoder.model_type == family


@pytest.mark.parametrize("family", FAMILIES)
def test_loaded_weights_are_the_saved_ones(tiny_models, family):
    folder, saved = tiny_models[family]
    loaded = HFEncoder(folder).model.state_dict()
    if family == "whisper":
        saved = {k: v for k, v in saved.items() if k.startswith("encoder.")}  # the decoder is dropped
    assert set(loaded) == set(saved)
    for key, tensor in saved.items():
        assert torch.equal(loaded[key], tensor), key


@pytest.mark.parametrize("family", FAMILIES)
def test_layer_sum_is_learnable_and_differs_from_last_layer(tiny_models, family):
    folder = tiny_models[family][0]
    summed, last = HFEncoder(folder, layer_sum=True).eval(), HFEncoder(folder).eval()
    assert torch.equal(summed.layer_weights.detach(), torch.zeros(LAYERS + 1))
    wavs, lens = batch()
    out = summed(wavs, lens)
    assert out.shape == (2, frames(family), DIM)
    assert not torch.allclose(out, last(wavs, lens))
    out.pow(2).mean().backward()
    assert summed.layer_weights.grad is not None
    assert summed.layer_weights.grad.abs().sum() > 0


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_output_layer_matches_transformers_hidden_states(tiny_models, family):
    folder = tiny_models[family][0]
    wavs, _ = batch()
    for layer in range(LAYERS + 1):
        encoder = HFEncoder(folder, output_layer=layer).eval()
        out = encoder(wavs)
        with torch.no_grad():
            if family == "whisper":
                mel = encoder.wrapper._get_mel(wavs)
                reference = encoder.model.encoder(mel, output_hidden_states=True)
            else:
                # SpeechBrain's wrapper normalises the waveform, as the feature extractor config asks.
                reference = encoder.model(F.layer_norm(wavs, wavs.shape[1:]), output_hidden_states=True)
        expected = reference.last_hidden_state if layer == LAYERS else reference.hidden_states[layer]
        assert torch.allclose(out, expected[:, : out.shape[1]], atol=1e-5), layer


def test_a_deep_copy_records_its_own_hidden_states(tiny_models):
    # e.g. a frozen teacher copy for regularised fine-tuning: each copy must read its own layers.
    encoder = HFEncoder(tiny_models["wav2vec2"][0], output_layer=1).eval()
    teacher = copy.deepcopy(encoder)
    wavs, lens = batch()
    before = encoder(wavs, lens)
    assert torch.equal(teacher(wavs, lens), before)
    with torch.no_grad():
        for param in teacher.model.encoder.layers[0].parameters():
            param.add_(0.5)
    assert not torch.allclose(teacher(wavs, lens), before)
    assert torch.equal(encoder(wavs, lens), before)


@pytest.mark.parametrize("family", FAMILIES)
def test_layers_cover_every_parameter_bottom_to_top(tiny_models, family):
    encoder = HFEncoder(tiny_models[family][0], layer_sum=True)
    groups = encoder.layers()
    assert len(groups) == LAYERS + 1
    seen = [{id(p) for p in group.parameters()} for group in groups]
    assert all(seen), "every group has parameters"
    assert sum(len(ids) for ids in seen) == len(set().union(*seen)), "groups are disjoint"
    assert set().union(*seen) == {id(p) for p in encoder.model.parameters()}
    assert id(encoder.layer_weights) not in set().union(*seen)
    front_end = encoder.model.encoder.conv1 if family == "whisper" else encoder.model.feature_extractor
    assert {id(p) for p in front_end.parameters()} <= seen[0]
    for index, layer in enumerate(encoder.model.encoder.layers):
        assert {id(p) for p in layer.parameters()} <= seen[index + 1]
    # Groups act on the encoder itself, and are not registered (nothing is saved twice).
    groups[1].requires_grad_(False)
    assert not any(p.requires_grad for p in encoder.model.encoder.layers[0].parameters())
    assert set(encoder.state_dict()) == {f"wrapper.{k}" for k in encoder.wrapper.state_dict()} | {"layer_weights"}


@pytest.mark.parametrize("family", FAMILIES)
def test_freeze_feature_extractor_freezes_only_the_front_end(tiny_models, family):
    folder = tiny_models[family][0]
    encoder = HFEncoder(folder).train()
    front_end = encoder.layers()[0]
    if family == "whisper":
        convs = [encoder.model.encoder.conv1, encoder.model.encoder.conv2]
    else:
        convs = [encoder.model.feature_extractor]
    assert not any(p.requires_grad for conv in convs for p in conv.parameters())
    assert all(p.requires_grad for group in encoder.layers()[1:] for p in group.parameters())
    wavs, lens = batch()
    encoder(wavs, lens).sum().backward()
    assert all(p.grad is None for conv in convs for p in conv.parameters())
    assert all(p.grad is not None for p in encoder.model.encoder.layers[0].parameters())

    unfrozen = HFEncoder(folder, freeze_feature_extractor=False)
    assert all(p.requires_grad for p in unfrozen.layers()[0].parameters())
    assert len(list(front_end.parameters())) == len(list(unfrozen.layers()[0].parameters()))


def test_frozen_encoder_stays_in_eval_and_trains_only_layer_weights(tiny_models):
    encoder = HFEncoder(tiny_models["wavlm"][0], freeze=True, layer_sum=True).train()
    assert not encoder.model.training
    assert not any(p.requires_grad for p in encoder.model.parameters())
    wavs, lens = batch()
    out = encoder(wavs, lens)
    out.sum().backward()
    assert encoder.layer_weights.grad is not None
    assert torch.allclose(out, encoder(wavs, lens)), "a frozen encoder is deterministic"


def test_layer_sum_survives_layer_drop_in_training(tiny_models):
    # transformers 5.x records no hidden state for a dropped layer; the weighted sum must still see N + 1 states
    # (a dropped layer repeats the state below it), whichever layers are dropped.
    encoder = HFEncoder(tiny_models["hubert"][0], layer_sum=True).train()
    wavs, lens = batch()
    for seed, layerdrop in enumerate((1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)):
        encoder.model.config.layerdrop = layerdrop
        torch.manual_seed(seed)
        out = encoder(wavs, lens)
        assert out.shape == (2, SSL_FRAMES, DIM)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("samples", [321, 4000, 16000, 16123])
def test_whisper_batch_window_keeps_20_ms_frames_and_the_30_s_windows_alignment(tiny_models, samples):
    folder = tiny_models["whisper"][0]
    torch.manual_seed(0)
    wavs = torch.randn(2, samples)
    first, last = {}, {}
    for window in ("30s", "batch"):
        first[window] = HFEncoder(folder, output_layer=0, whisper_window=window).eval()(wavs)
        last[window] = HFEncoder(folder, whisper_window=window).eval()(wavs)
    assert first["batch"].shape == last["batch"].shape == (2, math.ceil(samples / 320), DIM)
    # What enters the first transformer layer is the 30 s window's, frame for frame ...
    assert torch.allclose(first["batch"], first["30s"], atol=1e-6)
    # ... but attention no longer sees the window's padding, so the layers' outputs change.
    assert not torch.allclose(last["batch"], last["30s"], atol=1e-3)


def test_whisper_batch_window_puts_a_click_in_the_frame_of_its_time(tiny_models):
    encoder = HFEncoder(tiny_models["whisper"][0], output_layer=0, whisper_window="batch").eval()
    torch.manual_seed(0)
    # Over noise, not silence: the log-mel's floor follows the loudest bin, which a click over silence would move.
    noise = torch.randn(1, 16000)
    click = noise.clone()
    click[0, 8000] += 5.0  # 0.5 s: encoder frame 25 of 50
    changed = (encoder(click) - encoder(noise)).abs().amax(dim=-1)[0]
    frames = changed.nonzero().flatten().tolist()
    # The STFT window (25 ms) and the two convolutions spread it over neighbouring frames only.
    assert 25 in frames and min(frames) >= 23 and max(frames) <= 27, frames


def test_whisper_batch_window_trains_freezes_and_stops_at_30_s(tiny_models):
    folder = tiny_models["whisper"][0]
    encoder = HFEncoder(folder, layer_sum=True, whisper_window="batch").train()
    wavs, _ = batch()
    encoder(wavs).pow(2).mean().backward()
    assert all(p.grad is None for p in encoder.model.encoder.conv1.parameters())
    assert all(p.grad is not None for p in encoder.model.encoder.layers[0].parameters())
    assert encoder.layer_weights.grad is not None

    frozen = HFEncoder(folder, freeze=True, whisper_window="batch").train()
    assert not frozen(wavs).requires_grad
    assert torch.equal(frozen(wavs), frozen(wavs)), "a frozen encoder is deterministic"

    long = torch.randn(1, 16000 * 31)
    assert frozen(long).shape == (1, 1500, DIM), "cut at the positional table's 30 s, as the 30 s window is"
    with pytest.raises(ValueError, match="whisper_window='10s'"):
        HFEncoder(folder, whisper_window="10s")


def test_hub_id_is_loaded_from_the_hf_cache_offline(tiny_models, tmp_path):
    # The code path of "facebook/wav2vec2-base": a hub id resolved through the HF cache layout.
    folder, saved = tiny_models["wav2vec2"]
    repo = tmp_path / "models--tiny-org--tiny-wav2vec2"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)
    encoder = HFEncoder("tiny-org/tiny-wav2vec2", save_path=tmp_path)
    assert torch.equal(
        encoder.model.state_dict()["encoder.layers.1.attention.k_proj.weight"],
        saved["encoder.layers.1.attention.k_proj.weight"],
    )
    assert encoder(*batch()).shape == (2, SSL_FRAMES, DIM)


@pytest.fixture
def no_loading(monkeypatch):
    """Fails the test if a SpeechBrain wrapper is built: sources must be checked before any heavy work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the source should have been rejected before loading")

    monkeypatch.setattr(hf_module, "build_wrapper", refuse)


def test_missing_folder_is_reported(tmp_path, no_loading):
    missing = tmp_path / "nowhere" / "wav2vec2"
    with pytest.raises(PretrainedSourceError, match="no such folder") as err:
        HFEncoder(missing)
    assert str(missing) in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, FileNotFoundError)


def test_folder_without_config_is_reported(tiny_models, tmp_path, no_loading):
    folder = tmp_path / "no_config"
    shutil.copytree(tiny_models["wav2vec2"][0], folder)
    os.remove(folder / "config.json")
    with pytest.raises(PretrainedSourceError, match="no config.json") as err:
        HFEncoder(folder)
    assert str(folder) in str(err.value) and "save_pretrained" in str(err.value)


def test_folder_without_weights_or_feature_extractor_is_reported(tiny_models, tmp_path, no_loading):
    folder = tmp_path / "partial"
    shutil.copytree(tiny_models["wav2vec2"][0], folder)
    os.remove(folder / "preprocessor_config.json")
    with pytest.raises(PretrainedSourceError, match="preprocessor_config.json"):
        HFEncoder(folder)
    os.remove(folder / "model.safetensors")
    with pytest.raises(PretrainedSourceError, match="no weights"):
        HFEncoder(folder)


def test_unknown_hub_id_offline_is_reported(tmp_path, no_loading):
    with pytest.raises(PretrainedSourceError, match="HF cache") as err:
        HFEncoder("no-such-org/no-such-speech-model", save_path=tmp_path)
    assert "no-such-org/no-such-speech-model" in str(err.value)


def test_unsupported_model_type_and_bad_output_layer_are_reported(tiny_models, tmp_path, no_loading):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_models["wav2vec2"][0], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(PretrainedSourceError, match="'bert'"):
        HFEncoder(folder)
    with pytest.raises(ValueError, match="output_layer=3"):
        HFEncoder(tiny_models["wav2vec2"][0], output_layer=LAYERS + 1)


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_frozen_layer_sum_caches_every_hidden_state_and_sums_them_later(tiny_models, family):
    from speechbrain_xfer.data.fingerprints import front_end_fingerprint

    encoder = HFEncoder(tiny_models[family][0], freeze=True, layer_sum=True, whisper_window="batch")
    wavs, _ = batch()
    cached = encoder.cached_forward(wavs[:1])
    assert cached.shape == (1, frames(family), LAYERS + 1, DIM)
    fingerprint = front_end_fingerprint({"encoder": encoder})
    with torch.no_grad():
        encoder.layer_weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
    torch.testing.assert_close(encoder.finish_cached(cached), encoder(wavs[:1]), rtol=0, atol=1e-6)
    # The layer weights train on cached states: changing them must not move the cache to another folder.
    assert front_end_fingerprint({"encoder": encoder}) == fingerprint
    with torch.no_grad():
        encoder.model.encoder.layers[0].final_layer_norm.bias.add_(1.0)
    assert front_end_fingerprint({"encoder": encoder}) != fingerprint

    plain = HFEncoder(tiny_models[family][0], freeze=True)
    assert plain.cache_excluded == () and torch.equal(plain.cached_forward(wavs[:1]), plain(wavs[:1]))


def test_output_layer_auto_returns_the_selected_hidden_state_and_checkpoints_keep_it(tiny_models):
    folder = tiny_models["wav2vec2"][0]
    wavs = torch.randn(2, 8000)
    encoder = HFEncoder(folder, output_layer="auto").eval()
    with pytest.raises(RuntimeError, match="no layer chosen yet"):
        encoder(wavs)
    encoder.select_output_layer(1)
    states = encoder.hidden_states(wavs)
    assert states.shape[2] == LAYERS + 1
    torch.testing.assert_close(encoder(wavs), states[:, :, 1], rtol=0, atol=0)
    torch.testing.assert_close(encoder(wavs), HFEncoder(folder, output_layer=1).eval()(wavs), rtol=0, atol=0)

    restored = HFEncoder(folder, output_layer="auto")
    restored.load_state_dict(encoder.state_dict())
    assert restored.selected_layer == 1
    with pytest.raises(ValueError, match="output_layer=3"):
        encoder.select_output_layer(LAYERS + 1)
    with pytest.raises(ValueError, match="not 'auto'"):
        HFEncoder(folder, output_layer=1).select_output_layer(0)
