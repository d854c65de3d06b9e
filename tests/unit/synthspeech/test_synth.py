"""The SynthSpeech corpus, checked on a tiny instance built once per session."""

import collections
import glob
import hashlib
import os

import numpy as np
import pytest
import soundfile as sf
from speechbrain.dataio.dataset import DynamicItemDataset

from speechbrain_xfer.synthspeech.synth import (
    STRATIFY_BY,
    SynthOptions,
    Utterance,
    plan_corpus,
    read_manifest,
    synthesize_subset,
    synthesize_task,
)
from speechbrain_xfer.synthspeech.voices import SPLITS, Speaker

SUBSETS = ("words/source", "words/target", "intent", "emotion", "asr/source", "asr/target")
LABELS = {
    "words": ["word"],
    "intent": ["transcript", "intent", "action", "object", "location"],
    "emotion": ["transcript", "emotion"],
    "asr": ["transcript"],
}


def test_every_subset_has_three_manifests_with_the_right_columns(tiny_corpus):
    root, reports = tiny_corpus
    assert sorted(reports) == sorted(SUBSETS)
    for subset in SUBSETS:
        for split in SPLITS:
            rows = read_manifest(root / subset / f"{split}.csv")
            assert rows, (subset, split)
            assert list(rows[0]) == ["ID", "duration", "wav", "voice", *LABELS[subset.split("/")[0]]]
            assert all(row["wav"].startswith("$data_root/") for row in rows)


def test_manifests_load_in_speechbrain(tiny_corpus):
    root, _ = tiny_corpus
    folder = root / "intent"
    data = DynamicItemDataset.from_csv(str(folder / "valid.csv"), replacements={"data_root": str(folder)})
    data.set_output_keys(["id", "wav", "intent", "duration"])
    item = data[0]
    assert os.path.isfile(item["wav"])
    assert float(item["duration"]) > 0.3
    assert item["intent"].count("_") == 2


def test_audio_is_16k_mono_and_not_silent(tiny_corpus):
    root, _ = tiny_corpus
    for subset in SUBSETS:
        folder = root / subset
        for row in read_manifest(folder / "test.csv")[:5]:
            path = row["wav"].replace("$data_root", str(folder))
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            audio, _ = sf.read(path)
            assert abs(len(audio) / 16000 - float(row["duration"])) < 1e-3
            assert np.sqrt(np.mean(audio**2)) > 0.003, path


def test_splits_are_speaker_disjoint_across_all_tasks(tiny_corpus):
    root, _ = tiny_corpus
    voices = collections.defaultdict(set)
    for subset in SUBSETS:
        for split in SPLITS:
            voices[split] |= {row["voice"] for row in read_manifest(root / subset / f"{split}.csv")}
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["valid"]
    assert not voices["valid"] & voices["test"]


def test_kshot_manifests_are_nested_and_stratified(tiny_corpus):
    root, _ = tiny_corpus
    for subset in ("words/target", "intent", "emotion"):
        key = STRATIFY_BY[subset.split("/")[0]]
        train = read_manifest(root / subset / "train.csv")
        available = collections.Counter(row[key] for row in train)
        previous = set()
        for k in (1, 3, 10, 30):
            rows = read_manifest(root / subset / f"train_k{k}.csv")
            counts = collections.Counter(row[key] for row in rows)
            assert counts == {label: min(k, n) for label, n in available.items()}, (subset, k)
            ids = {row["ID"] for row in rows}
            assert previous <= ids
            previous = ids


def _digest(folder):
    files = sorted(glob.glob(f"{folder}/**/*.csv", recursive=True) + glob.glob(f"{folder}/**/*.wav", recursive=True))
    digest = hashlib.sha256()
    for path in files:
        digest.update(os.path.relpath(path, folder).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest(), len(files)


def test_same_seed_gives_identical_bytes(tmp_path):
    options = SynthOptions(seed=11, num_speakers=4, scale=0.2)
    synthesize_task("emotion", str(tmp_path / "a"), options, jobs=1, progress=False)
    synthesize_task("emotion", str(tmp_path / "b"), options, jobs=2, progress=False)
    synthesize_task(
        "emotion", str(tmp_path / "c"), SynthOptions(seed=12, num_speakers=4, scale=0.2), jobs=2, progress=False
    )
    digest_a, n_files = _digest(tmp_path / "a")
    assert n_files > 20
    assert digest_a == _digest(tmp_path / "b")[0]
    assert digest_a != _digest(tmp_path / "c")[0]


def test_work_already_done_is_skipped(tiny_corpus):
    root, reports = tiny_corpus
    folder = root / "emotion"
    before = os.path.getmtime(folder / "train.csv")
    report = synthesize_task("emotion", str(root), SynthOptions(seed=7, num_speakers=8, scale=0.25), jobs=1)
    assert report["emotion"] == reports["emotion"]
    assert os.path.getmtime(folder / "train.csv") == before


def test_a_failing_voice_is_reported_not_fatal(tmp_path):
    good = Speaker("en-us", "m1", 170, 50, 50)
    bad = Speaker("xx-nowhere", "m1", 170, 50, 50)
    utts = [
        Utterance(f"{split}_{i}", split, bad if i == 1 else good, "stop", {"word": "stop"}, clip_seconds=1.0)
        for split in SPLITS
        for i in range(3)
    ]
    report = synthesize_subset(str(tmp_path), utts, SynthOptions(), "words", jobs=2, progress=False)
    assert report["counts"] == {"train": 2, "valid": 2, "test": 2}
    assert [f["ID"] for f in report["failures"]] == ["train_1", "valid_1", "test_1"]
    assert "no voice 'xx-nowhere+m1'" in report["failures"][0]["reason"]
    assert [row["ID"] for row in read_manifest(tmp_path / "train.csv")] == ["train_0", "train_2"]


def test_default_sizes_are_large_enough_for_30_shots():
    for task, key in STRATIFY_BY.items():
        for subset, utts in plan_corpus(task, SynthOptions()).items():
            counts = collections.Counter(u.labels[key] for u in utts if u.split == "train")
            assert min(counts.values()) >= 30, subset


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown SynthSpeech task 'music'"):
        plan_corpus("music", SynthOptions())
