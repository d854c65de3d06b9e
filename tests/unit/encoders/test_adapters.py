"""LoRA and Houlsby adapters in a tiny wav2vec 2.0 (and its kin) and in ConvEncoder, alone and in a TransferBrain."""

import collections
import logging
import os

import pytest
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from tiny_hf import FAMILIES

from speechbrain_xfer.brains import LayerSchedule, UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.encoders import AdaptedEncoder, ConvEncoder, HFEncoder, add_adapters, parameter_counts
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.regularization import L2SP
from speechbrain_xfer.synthspeech.synth import read_manifest, write_manifest

pytestmark = [
    pytest.mark.filterwarnings("ignore:`gradient_checkpointing_disable` is deprecated:FutureWarning"),
    pytest.mark.usefixtures("offline"),
]

# Adapted by default per layer: q, k, v, out and the two feed-forward projections; WavLM's attention runs a fused
# kernel on the projection weights, so only its feed-forward is adapted.
ADAPTED_PER_LAYER = {"wav2vec2": 6, "hubert": 6, "wavlm": 2, "whisper": 6}


def waveforms():
    torch.manual_seed(0)
    return torch.randn(2, 4000), torch.tensor([1.0, 0.75])


def conv_encoder(seed=0):
    torch.manual_seed(seed)
    return ConvEncoder(40, channels=(48, 48), strides=(2, 1), dropout=0.0)


def trainable_names(module):
    return {name for name, p in module.named_parameters() if p.requires_grad}


def adapter_names(module):
    return {name for name, _ in module.named_parameters() if ".adapter_" in name}


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_leaves_hub_encoder_output_unchanged_and_only_adapters_trainable(tiny_models, family):
    encoder = HFEncoder(tiny_models[family][0]).eval()
    wavs, lens = waveforms()
    with torch.no_grad():
        before = encoder(wavs, lens)
    adapted = AdaptedEncoder(encoder, kind="lora", rank=4).eval()
    assert len(adapted.adapted_layers) == 2 * ADAPTED_PER_LAYER[family]
    with torch.no_grad():
        assert (adapted(wavs, lens) - before).abs().max() < 1e-6
    assert trainable_names(adapted) == adapter_names(adapted) != set()
    assert adapted.output_dim == 32 and len(adapted.layers()) == 3


def test_lora_leaves_conv_encoder_output_unchanged_and_only_adapters_trainable():
    encoder = conv_encoder().eval()
    feats, lens = torch.randn(3, 60, 40), torch.tensor([1.0, 0.5, 0.8])
    before = encoder(feats, lens)
    adapted = add_adapters(encoder, kind="lora", rank=4, alpha=8.0)
    assert adapted.adapted_layers == ["blocks.0.conv", "blocks.1.conv"]
    assert (adapted(feats, lens) - before).abs().max() < 1e-6
    assert trainable_names(adapted) == adapter_names(adapted)
    # Down convolutions mirror the pretrained ones (kernel 5, stride 2 for the first), up convolutions are 1x1.
    # 4 * 5 * (40 + 48) + 2 * 4 * 48 adapter weights; the pretrained blocks hold 9,744 + 11,664.
    assert parameter_counts(adapted) == (2_144, 2_144 + 21_408)


def test_houlsby_adapters_train_alone_in_a_hub_encoder(tiny_models):
    adapted = AdaptedEncoder(HFEncoder(tiny_models["wav2vec2"][0]), kind="houlsby", projection_size=8)
    assert trainable_names(adapted) == adapter_names(adapted) != set()
    frozen = {name: p.detach().clone() for name, p in adapted.named_parameters() if not p.requires_grad}
    adapters = {name: p.detach().clone() for name, p in adapted.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
    wavs, lens = waveforms()
    for _ in range(3):
        optimizer.zero_grad()
        adapted(wavs, lens).pow(2).mean().backward()
        optimizer.step()
    params = dict(adapted.named_parameters())
    assert all(params[name].grad is None and torch.equal(params[name], value) for name, value in frozen.items())
    assert all(params[name].grad is not None for name in adapters)
    # Up projections start at zero and move at once; in a random tiny model the down projections of the query and
    # key get gradients too small (~1e-19) for three Adam steps to move them.
    moved = {name for name, value in adapters.items() if not torch.equal(params[name], value)}
    assert {name for name in adapters if name.endswith("adapter_up_proj.weight")} <= moved


def test_layer_sum_weights_stay_trainable(tiny_models):
    adapted = AdaptedEncoder(HFEncoder(tiny_models["hubert"][0], layer_sum=True), kind="lora", rank=2)
    assert trainable_names(adapted) == adapter_names(adapted) | {"adapted_model.layer_weights"}


def test_unusable_targets_and_encoders_are_reported(tiny_models):
    with pytest.raises(ValueError, match="WavLMAttention"):
        AdaptedEncoder(HFEncoder(tiny_models["wavlm"][0]), targets=["*.attention.q_proj"])
    with pytest.raises(ValueError, match="freeze=True"):
        AdaptedEncoder(HFEncoder(tiny_models["wav2vec2"][0], freeze=True))
    with pytest.raises(ValueError, match=r"blocks\.0\.conv.*Conv1d.*Linear"):
        AdaptedEncoder(conv_encoder(), kind="houlsby")
    with pytest.raises(ValueError, match=r"no layer of ConvEncoder.*named like \['blocks\.0\.conv'"):
        AdaptedEncoder(conv_encoder(), targets="*.q_proj")
    with pytest.raises(ValueError, match="unknown adapter kind 'prefix'"):
        AdaptedEncoder(conv_encoder(), kind="prefix")


def test_schedule_freezes_adapters_but_never_unfreezes_pretrained_weights():
    adapted = AdaptedEncoder(conv_encoder(), kind="lora", rank=2)
    adapters = adapter_names(adapted)
    schedule = LayerSchedule(freeze_steps=1)
    schedule.apply(adapted.layers(), step=0)
    assert trainable_names(adapted) == set()
    schedule.apply(adapted.layers(), step=1)
    assert trainable_names(adapted) == adapters


def test_checkpoints_hold_adapters_and_statistics_and_load_unadapted_encoders(tmp_path):
    pretrained = conv_encoder(seed=0)
    torch.save(pretrained.state_dict(), tmp_path / "pretrained.ckpt")
    adapted = AdaptedEncoder(conv_encoder(seed=0), kind="lora", rank=2)
    adapted.train()(torch.randn(2, 30, 40))  # moves the batch-norm statistics
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if ".adapter_" in name:
                param.add_(1.0)
    adapted.layers()[0].requires_grad_(False)  # as a layer schedule would, for a while
    adapted.saver(tmp_path / "adapted.ckpt")
    saved = torch.load(tmp_path / "adapted.ckpt")
    assert adapter_names(adapted) <= set(saved)
    assert "adapted_model.blocks.0.norm.running_mean" in saved
    assert not any(name.endswith("pretrained_module.weight") for name in saved)

    # A fresh run: random encoder weights, then the pretrained checkpoint (names from before adaptation), then ours.
    resumed = AdaptedEncoder(conv_encoder(seed=1), kind="lora", rank=2)
    resumed.loader(tmp_path / "pretrained.ckpt", end_of_epoch=False)
    assert torch.equal(resumed.adapted_model.blocks[1].conv.pretrained_module.weight, pretrained.blocks[1].conv.weight)
    resumed.loader(tmp_path / "adapted.ckpt", end_of_epoch=False)
    resumed_state = resumed.state_dict()
    assert all(torch.equal(value, resumed_state[name]) for name, value in adapted.state_dict().items())

    torch.save({"head.weight": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"other\.ckpt.*unexpected \['adapted_model\.head\.weight'\]"):
        resumed.loader(tmp_path / "other.ckpt", end_of_epoch=False)


def adapted_brain(tmp_path, folder, train_csv):
    """An UtteranceClassifierBrain (as tests/unit/brains/conftest.py builds it) on a LoRA-adapted ConvEncoder."""
    csvs = {"train": train_csv, "valid": train_csv, "test": train_csv}
    datasets, label_encoders = classification_datasets(str(folder), csvs, ["word"], str(tmp_path / "save"))
    encoder = AdaptedEncoder(conv_encoder(), kind="lora", rank=4, alpha=4.0)
    heads = torch.nn.ModuleDict(
        {"word": ClassifierHead(MeanMaxPooling(encoder.output_dim), len(label_encoders["word"]), dropout=0.0)}
    )
    counter = EpochCounter(1)
    hparams = {
        "targets": ["word"],
        "label_encoders": label_encoders,
        "compute_features": Fbank(n_mels=40),
        "mean_var_norm": InputNormalization(norm_type="sentence"),
        "encoder": encoder,
        "heads": heads,
        "epoch_counter": counter,
        "regularizers": {"l2sp": L2SP(encoder, heads, alpha=0.1, beta=0.0)},
    }
    brain = UtteranceClassifierBrain(
        modules={"encoder": encoder, "heads": heads},
        opt_class=lambda params: torch.optim.Adam(params, lr=3e-3),
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=Checkpointer(str(tmp_path / "ckpt"), {"encoder": encoder, "heads": heads, "counter": counter}),
    )
    return brain, datasets


def test_brain_with_l2sp_trains_only_adapters_and_head(tiny_corpus, tmp_path, caplog):
    folder = tiny_corpus[0] / "words" / "target"
    rows, per_word = [], collections.Counter()
    for row in read_manifest(os.path.join(folder, "train.csv")):
        per_word[row["word"]] += 1
        if per_word[row["word"]] == 1:
            rows.append(row)
    write_manifest(str(tmp_path / "train.csv"), rows)
    brain, data = adapted_brain(tmp_path, folder, str(tmp_path / "train.csv"))
    before = {name: p.detach().clone() for name, p in brain.modules.named_parameters()}
    pretrained = {name for name, p in brain.modules.named_parameters() if not p.requires_grad}
    assert pretrained and all(".adapter_" not in name and "heads" not in name for name in pretrained)

    caplog.set_level(logging.INFO, logger="speechbrain_xfer.brains.transfer")
    loader = {"batch_size": 5}  # 10 utterances, 2 steps
    brain.fit(brain.hparams.epoch_counter, data["train"], train_loader_kwargs=loader)

    after = dict(brain.modules.named_parameters())
    assert all(torch.equal(after[name], before[name]) for name in pretrained), "a pretrained weight moved"
    assert all(not torch.equal(after[name], before[name]) for name in after if name.endswith("adapter_up_proj.weight"))
    assert all(not torch.equal(after[name], before[name]) for name in after if name.startswith("heads."))
    # L2-SP sees the adapters (anchored at zero for the up projections) and so is > 0 once they moved.
    assert brain.train_stats["R_l2sp"] > 0
    trainable, total = parameter_counts(brain.modules)
    assert f"trainable parameters: {trainable:,} of {total:,}" in caplog.text
    assert total - trainable == 21_408  # the two pretrained conv blocks
