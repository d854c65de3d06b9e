"""The check before training: every bad manifest item in one report, converted audio, the cache, skipping."""

import csv
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_xfer.data import audio_facts
from speechbrain_xfer.data.dataio import classification_datasets, read_mono_16k
from speechbrain_xfer.data.validation import (
    CACHE_NAME,
    ManifestError,
    check_manifests,
    manifest_checks,
    validate_manifests,
)

FIELDS = ["ID", "wav", "word"]


def tone(seconds=0.5, rate=16000):
    return 0.1 * np.sin(np.arange(int(seconds * rate)) * 0.05)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    """A folder with good 16 kHz files for each split; ``make(train_rows, valid_rows)`` writes the manifests."""
    for name in ("a", "b", "c", "d"):
        sf.write(tmp_path / f"{name}.wav", tone(), 16000)
    good_train = [["a", "$data_root/a.wav", "yes"], ["b", "$data_root/b.wav", "no"]]
    good_valid = [["c", "$data_root/c.wav", "yes"], ["d", "$data_root/d.wav", "no"]]

    def make(train_rows=(), valid_rows=()):
        return {
            "train": write_csv(tmp_path / "train.csv", [*good_train, *train_rows]),
            "valid": write_csv(tmp_path / "valid.csv", [*good_valid, *valid_rows]),
        }

    return tmp_path, make


def problems_of(report):
    return {item.id: item.problems for item in report.bad}


def check(folder, csvs, **kwargs):
    return validate_manifests(csvs, str(folder), ["word"], ["word"], progress=False, **kwargs)


def test_good_manifests_have_no_bad_items(corpus):
    folder, make = corpus
    report = check(folder, make())
    assert report.bad == [] and report.items == {"train": 2, "valid": 2} and report.converted == []


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (None, "missing file"),
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: p.write_bytes(b"this is not audio" * 10), "unreadable audio"),
        (lambda p: sf.write(p, np.zeros(0), 16000), "no audio samples (0 frames)"),
        (lambda p: sf.write(p, tone(0.05), 16000), "too short: 0.050 s < min_duration 0.1 s"),
        (lambda p: sf.write(p, np.r_[tone(), np.nan], 16000, subtype="FLOAT"), "NaN or inf samples"),
        (lambda p: sf.write(p, np.r_[tone(), np.inf], 16000, subtype="DOUBLE"), "NaN or inf samples"),
    ],
    ids=["missing", "empty", "garbage", "zero-length", "too-short", "nan", "inf"],
)
def test_each_bad_audio_file_is_reported_with_its_id_file_and_line(corpus, write, problem):
    folder, make = corpus
    if write is not None:
        write(folder / "bad.wav")
    report = check(folder, make(train_rows=[["bad", "$data_root/bad.wav", "yes"]]))
    [item] = report.bad
    assert (item.split, item.id, item.wav, item.line) == ("train", "bad", f"{folder}/bad.wav", 4)
    assert item.problems[0].startswith(problem)
    assert f"train.csv:4: bad ({folder}/bad.wav): {problem}" in report.listing()


def test_label_and_id_problems(corpus):
    folder, make = corpus
    csvs = make(
        train_rows=[
            ["nolabel", "$data_root/a.wav", ""],
            ["a", "$data_root/b.wav", "no"],
            ["", "$data_root/c.wav", "no"],
        ],
        valid_rows=[["new", "$data_root/c.wav", "maybe"]],
    )
    problems = problems_of(check(folder, csvs))
    assert problems == {
        "nolabel": ("missing word label",),
        "a": ("duplicate ID (also on line 2)",),
        "": ("empty ID",),
        "new": ("unknown word label 'maybe' (never in training)",),
    }


def test_ids_shared_by_two_splits_are_noted_but_not_bad(corpus):
    folder, make = corpus
    csvs = make(valid_rows=[["a", "$data_root/a.wav", "yes"]])
    report = check(folder, csvs)
    assert report.bad == [] and report.shared_ids == {"a": ["train", "valid"]}
    assert check(folder, {"valid": csvs["valid"], "test": csvs["valid"]}).shared_ids == {}  # testing on valid


def test_one_report_lists_every_bad_item_and_the_counts(corpus):
    folder, make = corpus
    (folder / "empty.wav").write_bytes(b"")
    report = check(folder, make([["x", "$data_root/gone.wav", "yes"]], [["y", "$data_root/empty.wav", ""]]))
    lines = report.listing().splitlines()
    assert lines[0] == "2 of 6 manifest items cannot be used (train: 1 of 3, valid: 1 of 3):"
    assert lines[1].endswith("x (" + str(folder / "gone.wav") + "): missing file")
    assert lines[2].endswith("y (" + str(folder / "empty.wav") + "): missing word label; empty file (0 bytes)")


def test_a_manifest_without_a_needed_column_is_refused(corpus):
    folder, _ = corpus
    (folder / "train.csv").write_text("ID,path,word\na,a.wav,yes\n")
    with pytest.raises(ManifestError, match=r"train\.csv has no column 'wav'"):
        check(folder, {"train": str(folder / "train.csv")})


def test_other_rates_and_channels_are_noted_once_and_converted_when_read(corpus):
    folder, make = corpus
    sf.write(folder / "cd.wav", np.stack([tone(1, 44100), -tone(1, 44100)], axis=1), 44100)
    sf.write(folder / "phone.wav", tone(1, 8000), 8000)
    csvs = make([["cd", "$data_root/cd.wav", "yes"], ["phone", "$data_root/phone.wav", "no"]])
    report = check(folder, csvs)
    assert report.bad == []
    assert [(rate, channels) for _, rate, channels in report.converted] == [(44100, 2), (8000, 1)]
    assert report.conversion_note().startswith(f"2 audio files are not 16 kHz mono (first: {folder}/cd.wav, 44100")
    assert read_mono_16k(str(folder / "cd.wav")).shape == (16000,)
    assert (
        read_mono_16k(str(folder / "cd.wav")).abs().max() < 1e-4
    )  # the two channels cancel out (16-bit rounding aside)
    assert read_mono_16k(str(folder / "phone.wav")).shape == (16000,)
    assert torch.equal(read_mono_16k(str(folder / "a.wav")), torch.from_numpy(sf.read(folder / "a.wav")[0]).float())


def test_the_cache_reads_each_file_once_until_it_changes(corpus, monkeypatch):
    folder, make = corpus
    csvs, cache = make(), str(folder / CACHE_NAME)
    read = []
    real = audio_facts.read_audio_facts
    monkeypatch.setattr(audio_facts, "read_audio_facts", lambda path: read.append(path) or real(path))
    assert check(folder, csvs, cache_file=cache).bad == []
    assert len(read) == 4
    check(folder, csvs, cache_file=cache)
    assert len(read) == 4, "a cached file was read again"
    sf.write(folder / "a.wav", np.r_[tone(), np.nan], 16000, subtype="FLOAT")
    assert problems_of(check(folder, csvs, cache_file=cache)) == {"a": ("NaN or inf samples",)}
    assert read[4:] == [f"{folder}/a.wav"]


def test_a_corrupt_cache_is_rebuilt(corpus):
    folder, make = corpus
    (folder / CACHE_NAME).write_text("{not json")
    assert check(folder, make(), cache_file=str(folder / CACHE_NAME)).bad == []
    assert '"version": 1' in (folder / CACHE_NAME).read_text()


def test_datasets_are_checked_only_within_manifest_checks(corpus, tmp_path):
    folder, make = corpus
    csvs = make(train_rows=[["x", "$data_root/gone.wav", "yes"]])
    assert check_manifests(csvs, str(folder), str(tmp_path / "save"), ["word"]) is csvs
    with manifest_checks(progress=False), pytest.raises(ManifestError) as err:
        classification_datasets(str(folder), csvs, ["word"], str(tmp_path / "save"))
    assert "x (" in str(err.value) and "--skip_bad_items=True" in str(err.value)


def test_skipping_leaves_the_bad_items_out_and_logs_them(corpus, tmp_path, caplog):
    folder, make = corpus
    (folder / "nan.wav").write_bytes(b"junk")
    csvs = make(
        [["x", "$data_root/gone.wav", "yes"], ["a", "$data_root/a.wav", "no"]], [["y", "$data_root/nan.wav", "no"]]
    )
    with caplog.at_level(logging.WARNING), manifest_checks(skip_bad_items=True, progress=False):
        datasets, encoders = classification_datasets(str(folder), csvs, ["word"], str(tmp_path / "save"))
    assert [item["id"] for item in datasets["train"]] == ["a", "b"]
    assert datasets["train"][0]["word"] == "yes"  # the first "a" is kept, its duplicate left out
    assert [item["id"] for item in datasets["valid"]] == ["c", "d"]  # "y" is not readable
    assert sorted(encoders["word"].lab2ind) == ["no", "yes"]
    assert "skipping 3 of 7 manifest items cannot be used (train: 2 of 4, valid: 1 of 3)" in caplog.text


def test_skipping_every_item_of_a_split_is_an_error(corpus, tmp_path):
    folder, make = corpus
    csvs = {**make(), "test": write_csv(folder / "test.csv", [["t", "$data_root/gone.wav", "yes"]])}
    with manifest_checks(skip_bad_items=True, progress=False), pytest.raises(ManifestError, match="no items in test"):
        classification_datasets(str(folder), csvs, ["word"], str(tmp_path / "save"))
