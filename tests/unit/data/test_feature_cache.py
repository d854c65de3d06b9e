"""Frozen-encoder feature cache: exact, reused across epochs, invalidated by front-end and audio changes."""

import os
import random
import shutil

import pytest
import soundfile as sf
import speechbrain as sb
import torch
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import DropChunk, SpeedPerturb
from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.data.feature_cache import add_feature_cache, feature_cache_applies
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.lobes.features import frame_lengths
from speechbrain_xfer.regularization import DELTA, L2SP
from speechbrain_xfer.synthspeech.synth import read_manifest, write_manifest


def copy_subset(source, dest, count):
    """Copies the first ``count`` training utterances of ``source`` (wavs too) and returns the manifest."""
    rows = read_manifest(os.path.join(source, "train.csv"))[:count]
    for row in rows:
        relative = row["wav"].replace("$data_root/", "")
        os.makedirs(os.path.dirname(dest / relative), exist_ok=True)
        shutil.copy2(os.path.join(source, relative), dest / relative)
    write_manifest(str(dest / "train.csv"), rows)
    return str(dest / "train.csv")


def build_brain(folder, csv, save, target, feature_cache=None, memory_mb=1024, wav_augment=None, views=0):
    """A linear-probing classifier (frozen ConvEncoder with a BiGRU, L2-SP on the head)."""
    csvs = {"train": csv, "valid": csv, "test": csv}
    datasets, encoders = classification_datasets(str(folder), csvs, [target], str(save))
    torch.manual_seed(0)
    encoder = ConvEncoder(40, channels=(32, 32), strides=(2, 1), rnn_dim=16, dropout=0.0)
    heads = torch.nn.ModuleDict({target: ClassifierHead(MeanMaxPooling(32), len(encoders[target]), dropout=0.0)})
    hparams = {
        "targets": [target],
        "label_encoders": encoders,
        "compute_features": Fbank(n_mels=40),
        "mean_var_norm": InputNormalization(norm_type="sentence"),
        "encoder": encoder,
        "heads": heads,
        "freeze_encoder": True,
        "regularizers": {"l2sp": L2SP(encoder, heads, alpha=0.1, beta=0.01)},
    }
    if wav_augment is not None:
        hparams.update(wav_augment=wav_augment, feature_cache_views=views)
    assert feature_cache_applies(hparams)
    brain = UtteranceClassifierBrain(
        modules={"encoder": encoder, "heads": heads},
        opt_class=lambda params: torch.optim.Adam(params, lr=3e-3),
        hparams=hparams,
        run_opts={"device": "cpu"},
    )
    item = None
    if feature_cache is not None:
        front_end = hparams["compute_features"], hparams["mean_var_norm"]
        item = add_feature_cache(
            datasets, feature_cache, encoder, *front_end, memory_mb=memory_mb, wav_augment=wav_augment, views=views
        )
    return brain, datasets, item


class ForwardCount:
    """Counts the utterances an encoder encodes (a forward hook; the batch size of each call)."""

    def __init__(self, encoder):
        self.utterances = 0
        encoder.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.utterances += output.shape[0]


@pytest.fixture
def intent_subset(tiny_corpus, tmp_path):
    """12 intent utterances of different lengths, copied so that a test may rewrite them."""
    root, _ = tiny_corpus
    return tmp_path / "data", copy_subset(root / "intent", tmp_path / "data", 12)


def test_cached_outputs_equal_the_batched_brain_path(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, item = build_brain(folder, csv, tmp_path / "save", "intent")
    brain.modules.eval()
    with torch.no_grad():
        uncached = [brain.compute_forward(b, sb.Stage.VALID) for b in make_dataloader(data["train"], batch_size=6)]
    assert {b["features"].shape[1] for b in uncached} != {1}  # the batches hold padding
    add_feature_cache(
        data, tmp_path / "cache", brain.modules.encoder, brain.hparams.compute_features, brain.hparams.mean_var_norm
    )
    with torch.no_grad():
        cached = [brain.compute_forward(b, sb.Stage.VALID) for b in make_dataloader(data["train"], batch_size=6)]
    checked = 0
    for plain, fast in zip(uncached, cached):
        assert fast["encoder_input"] is None
        for i in range(len(fast["lens"])):
            # Valid frames: those of the utterance encoded alone (all of a cached item).
            frames = int(torch.round(fast["lens"][i] * fast["features"].shape[1]))
            assert torch.all(fast["features"][i, frames:] == 0)
            assert (plain["features"][i, :frames] - fast["features"][i, :frames]).abs().max() <= 1e-5
            assert torch.all(plain["features"][i, frames:] == 0), "padding leaked into the batched output"
            checked += 1
        # The head pools the same frames: every valid one, subsampling or not.
        assert (plain["log_probs"]["intent"] - fast["log_probs"]["intent"]).abs().max() <= 1e-5
    assert checked == 12


def test_frame_lengths_make_padded_features_equal_unpadded_ones(intent_subset):
    folder, csv = intent_subset
    wavs = [sb.dataio.dataio.read_audio(r["wav"].replace("$data_root", str(folder))) for r in read_manifest(csv)]
    batch = sb.dataio.batch.PaddedBatch([{"sig": w} for w in wavs]).sig
    fbank, norm = Fbank(n_mels=40), InputNormalization(norm_type="sentence")
    feats = fbank(batch.data)
    exact = frame_lengths(fbank, batch.lengths, batch.data.shape[1], feats.shape[1])
    worst = {"waveform lengths": 0.0, "frame lengths": 0.0}
    for name, lengths in (("waveform lengths", batch.lengths), ("frame lengths", exact)):
        normalized = norm(feats, lengths)
        for i, wav in enumerate(wavs):
            alone = norm(fbank(wav.unsqueeze(0)), torch.ones(1))[0]
            assert torch.equal(feats[i, : len(alone)], fbank(wav.unsqueeze(0))[0])  # the filterbanks themselves agree
            worst[name] = max(worst[name], float((normalized[i, : len(alone)] - alone).abs().max()))
    # SpeechBrain's waveform lengths count one frame too many for some utterances, which shifts their statistics.
    assert worst["waveform lengths"] > 1e-3
    assert worst["frame lengths"] <= 1e-5


def test_later_epochs_and_runs_reuse_the_outputs(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, _ = build_brain(folder, csv, tmp_path / "save", "intent", feature_cache=tmp_path / "cache")
    count = ForwardCount(brain.modules.encoder)
    first = [data["train"][i]["encoded"] for i in range(12)]
    assert count.utterances == 12
    (folder_of_front_end,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in folder_of_front_end.iterdir()) == sorted(f"{r['ID']}.pt" for r in read_manifest(csv))
    second = [data["train"][i]["encoded"] for i in range(12)]  # from memory
    assert count.utterances == 12 and all(torch.equal(a, b) for a, b in zip(first, second))
    assert "sig" not in data["train"][0]  # the waveforms are not read again
    # A new run with the same encoder (same seed), reading every item from disk.
    rerun, data, _ = build_brain(folder, csv, tmp_path / "rerun", "intent", tmp_path / "cache", memory_mb=0)
    rerun_count = ForwardCount(rerun.modules.encoder)
    for _ in range(2):
        assert all(torch.equal(data["train"][i]["encoded"], first[i]) for i in range(12))
    assert rerun_count.utterances == 0


def test_a_changed_encoder_weight_gets_a_new_folder(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, item = build_brain(folder, csv, tmp_path / "save", "intent", feature_cache=tmp_path / "cache")
    encoder = brain.modules.encoder
    count = ForwardCount(encoder)
    before = data["train"][0]["encoded"]
    weight = encoder.blocks[0].conv.weight
    original = weight.detach().clone()
    with torch.no_grad():
        weight[0, 0, 0] += 1.0
    changed = data["train"][0]["encoded"]
    assert count.utterances == 2 and not torch.equal(before, changed)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    with torch.no_grad():
        weight.copy_(original)  # the original weights again: their folder, read from disk
    assert torch.equal(data["train"][0]["encoded"], before) and count.utterances == 2


def test_a_changed_audio_file_is_encoded_again(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, item = build_brain(folder, csv, tmp_path / "save", "intent", feature_cache=tmp_path / "cache")
    count = ForwardCount(brain.modules.encoder)
    before = [data["train"][i]["encoded"] for i in range(12)]
    wav = read_manifest(csv)[3]["wav"].replace("$data_root", str(folder))
    stat = os.stat(wav)
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    again = [data["train"][i]["encoded"] for i in range(12)]
    assert count.utterances == 13 and all(torch.equal(a, b) for a, b in zip(before, again))
    audio, rate = sf.read(wav)
    sf.write(wav, audio[::-1].copy(), rate)  # rewritten: same size, other content
    rewritten = data["train"][3]["encoded"]
    assert count.utterances == 14 and not torch.equal(rewritten, before[3])
    assert torch.equal(rewritten, item.encode(wav))


def test_an_unreadable_item_is_encoded_again(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, _ = build_brain(
        folder, csv, tmp_path / "save", "intent", feature_cache=tmp_path / "cache", memory_mb=0
    )
    count = ForwardCount(brain.modules.encoder)
    before = data["train"][0]["encoded"]
    (item,) = (tmp_path / "cache").glob(f"*/{read_manifest(csv)[0]['ID']}.pt")
    item.write_bytes(item.read_bytes()[:100])  # cut short
    assert torch.equal(data["train"][0]["encoded"], before) and count.utterances == 2


def test_linear_probing_on_cached_features_trains_like_the_plain_brain(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    folder = tmp_path / "data"
    csv = copy_subset(root / "intent", folder, 40)  # lengths vary: padded batches
    loader, epochs = {"batch_size": 8, "shuffle": False}, 4
    results = {}
    for name, cache in (("plain", None), ("cached", tmp_path / "cache")):
        brain, data, _ = build_brain(folder, csv, tmp_path / name, "action", feature_cache=cache)
        count = ForwardCount(brain.modules.encoder)
        brain.fit(range(epochs), data["train"], train_loader_kwargs=loader)
        brain.evaluate(data["test"], test_loader_kwargs=loader)
        results[name] = brain, count.utterances
    (plain, plain_encoded), (cached, cached_encoded) = results["plain"], results["cached"]
    utterances = len(read_manifest(csv))
    assert plain_encoded == (epochs + 1) * utterances  # every training epoch and the test pass
    assert cached_encoded == utterances  # once each, in the first epoch; the test pass reads the same ids
    heads_plain, heads_cached = plain.modules.heads.state_dict(), cached.modules.heads.state_dict()
    assert max(float((heads_plain[k] - heads_cached[k]).abs().max()) for k in heads_plain) <= 1e-5
    assert cached.test_stats["accuracy"] == plain.test_stats["accuracy"]
    assert abs(cached.test_stats["loss"] - plain.test_stats["loss"]) <= 1e-5
    assert set(cached.train_stats) == {"loss", "task_loss", "R_l2sp"}


def test_the_cache_applies_only_to_outputs_that_never_change():
    encoder = ConvEncoder(40, channels=(8,), strides=(1,))
    frozen = {"freeze_encoder": True, "mean_var_norm": InputNormalization(norm_type="sentence")}
    assert feature_cache_applies(frozen)
    assert not feature_cache_applies({**frozen, "freeze_encoder": False})
    assert not feature_cache_applies({**frozen, "freeze_encoder_steps": 100, "freeze_encoder": False})
    assert feature_cache_applies({**frozen, "wav_augment": torch.nn.Identity()})  # for the splits not augmented
    assert not feature_cache_applies({**frozen, "mean_var_norm": InputNormalization(norm_type="global")})
    assert not feature_cache_applies({**frozen, "regularizers": {"delta": DELTA(encoder)}})
    assert feature_cache_applies({**frozen, "regularizers": {"l2sp": L2SP(encoder)}})


def augmenter(concat_original=False):
    return Augmenter(
        concat_original=concat_original,
        min_augmentations=1,
        max_augmentations=2,
        augmentations=[SpeedPerturb(16000, speeds=[85, 115]), DropChunk(800, 1600, 1, 3)],
    )


def test_augmented_training_views_are_cached_per_view_and_the_same_in_every_run(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, item = build_brain(
        folder, csv, tmp_path / "save", "intent", tmp_path / "cache", wav_augment=augmenter(), views=3
    )
    exact = item.encode(read_manifest(csv)[0]["wav"].replace("$data_root", str(folder)))
    count = ForwardCount(brain.modules.encoder)
    random.seed(0)
    state = torch.random.get_rng_state()
    views = [data["train"][0]["encoded"] for _ in range(30)]
    assert torch.equal(torch.random.get_rng_state(), state)  # making a view leaves torch's random state alone
    distinct = []
    for view in views:
        if not any(view.shape == d.shape and torch.equal(view, d) for d in distinct):
            distinct.append(view)
    assert len(distinct) == 3 and count.utterances == 3  # each view encoded once, then served from memory
    assert all(view.shape != exact.shape or not torch.equal(view, exact) for view in distinct)  # all augmented
    # Valid and test are never augmented: the exact output of the plain item.
    first_id = read_manifest(csv)[0]["ID"]
    for split in ("valid", "test"):  # in duration order: find the same utterance
        assert torch.equal(data[split][data[split].data_ids.index(first_id)]["encoded"], exact)
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(folders) == 2  # the augmenter is part of the fingerprint: its own folder
    # Another run with a fresh cache makes the same views (seeded by utterance id and view number).
    rerun, data, _ = build_brain(
        folder, csv, tmp_path / "rerun", "intent", tmp_path / "other_cache", wav_augment=augmenter(), views=3
    )
    again = [data["train"][0]["encoded"] for _ in range(30)]
    assert all(any(a.shape == d.shape and torch.equal(a, d) for d in distinct) for a in again)
    assert sorted(p.name for p in (tmp_path / "other_cache").iterdir()) == folders


def test_linear_probing_on_augmented_views_trains_and_encodes_each_view_once(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    folder = tmp_path / "data"
    csv = copy_subset(root / "intent", folder, 16)
    brain, data, _ = build_brain(
        folder, csv, tmp_path / "save", "action", tmp_path / "cache", wav_augment=augmenter(), views=2
    )
    count = ForwardCount(brain.modules.encoder)
    before = {k: v.clone() for k, v in brain.modules.heads.state_dict().items()}
    random.seed(0)
    # Batches of 8 carry 8 labels: the Augmenter's label replication (sized by its last call, one utterance
    # here) must not apply to cached batches.
    brain.fit(range(3), data["train"], train_loader_kwargs={"batch_size": 8})
    assert 16 < count.utterances <= 2 * 16  # some utterances drew both of their views, none more
    assert torch.isfinite(torch.tensor(brain.train_stats["loss"]))
    after = brain.modules.heads.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_with_augmentation_and_no_views_only_the_splits_not_augmented_are_cached(intent_subset, tmp_path):
    folder, csv = intent_subset
    brain, data, item = build_brain(
        folder, csv, tmp_path / "save", "intent", tmp_path / "cache", wav_augment=augmenter(), views=0
    )
    count = ForwardCount(brain.modules.encoder)
    assert "encoded" not in data["train"][0] and "sig" in data["train"][0]  # the Brain augments these batches
    exact = [data["valid"][i]["encoded"] for i in range(12)]
    assert count.utterances == 12 and torch.equal(data["test"][3]["encoded"], exact[3]) and count.utterances == 12
    (only,) = (tmp_path / "cache").iterdir()
    assert not any(".view" in p.name for p in only.iterdir())
    random.seed(0)
    brain.fit(
        range(2),
        data["train"],
        data["valid"],
        train_loader_kwargs={"batch_size": 8},
        valid_loader_kwargs={"batch_size": 8},
    )
    assert count.utterances == 12 + 2 * 12  # every training utterance in each epoch; validation from the cache


def test_an_augmenter_that_returns_more_waveforms_than_it_got_is_refused(intent_subset, tmp_path):
    folder, csv = intent_subset
    _, data, _ = build_brain(
        folder,
        csv,
        tmp_path / "save",
        "intent",
        tmp_path / "cache",
        wav_augment=augmenter(concat_original=True),
        views=2,
    )
    with pytest.raises(ValueError, match="concat_original: False"):
        data["train"][0]["encoded"]
