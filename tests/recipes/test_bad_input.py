"""Bad input stops a recipe before training with one report (or, with --skip_bad_items=True, is left out)."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment

pytestmark = pytest.mark.slow

KWS_YAMLS = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech" / "KWS" / "hparams"
TINY_TRAINING = ("--number_of_epochs", 1, "--steps_per_epoch", 1, "--batch_size", 4, "--noprogressbar")
BAD_IDS = [
    "bad_nan",
    "bad_garbage",
    "bad_empty",
    "bad_zero",
    "bad_short",
    "bad_missing",
    "bad_nolabel",
    "train_dup",
    "valid_unknown",
]


def read_rows(path, rows):
    with open(path, newline="") as f:
        return [row for _, row in zip(range(rows), csv.DictReader(f))]


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_bad_files(folder):
    """One file per kind of bad audio, and a good 44.1 kHz stereo one; ``{ID: path}``."""
    tone = 0.1 * np.sin(np.arange(16000) * 0.05)
    sf.write(folder / "nan.wav", np.r_[tone, np.nan], 16000, subtype="FLOAT")
    (folder / "garbage.wav").write_bytes(b"RIFF....not a wave file at all")
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "zero.wav", np.zeros(0), 16000)
    sf.write(folder / "short.wav", tone[:800], 16000)
    sf.write(folder / "stereo.wav", np.stack([tone, tone], axis=1).repeat(3, axis=0)[:44100], 44100)
    names = {"nan": "nan", "garbage": "garbage", "empty": "empty", "zero": "zero", "short": "short"}
    return {f"bad_{k}": folder / f"{v}.wav" for k, v in names.items()} | {"bad_missing": folder / "gone.wav"}


@pytest.fixture(scope="module")
def bad_manifests(tiny_corpus, tmp_path_factory):
    """Train/valid/test manifests on the tiny KWS corpus, with every kind of bad item among 40 good ones."""
    root, _ = tiny_corpus
    data = root / "words" / "target"
    folder = tmp_path_factory.mktemp("bad-input")
    train, valid, test = (read_rows(data / f"{split}.csv", 20) for split in ("train", "valid", "test"))
    template = train[0]
    extra = [{**template, "ID": i, "wav": str(path)} for i, path in write_bad_files(folder).items()]
    extra += [
        {**template, "ID": "bad_nolabel", "word": ""},
        {**train[1], "ID": train[0]["ID"]},  # a duplicate ID
        {**template, "ID": "stereo_ok", "wav": str(folder / "stereo.wav")},
    ]
    valid.append({**valid[0], "ID": "valid_unknown", "word": "maybe"})
    csvs = {"train": train + extra, "valid": valid, "test": test}
    args = ["--data_folder", data] + [a for s, rows in csvs.items() for a in (f"--{s}_csv", folder / f"{s}.csv")]
    for split, rows in csvs.items():
        write_rows(folder / f"{split}.csv", rows)
    return folder, args, train[0]["ID"]


def test_bad_items_stop_the_run_with_one_report(bad_manifests, run_recipe, tmp_path):
    folder, args, duplicate = bad_manifests
    result = run_recipe("KWS", "scratch.yaml", *args, "--output_folder", tmp_path / "run", *TINY_TRAINING)
    assert result.returncode != 0
    report = result.stderr[result.stderr.index("error: ") :]
    assert report.startswith("error: 9 of 70 manifest items cannot be used (train: 8 of 29, valid: 1 of 21):")
    for expected in [
        "bad_nan (",
        "NaN or inf samples",
        "bad_garbage (",
        "unreadable audio",
        "empty file (0 bytes)",
        "no audio samples",
        "too short: 0.050 s",
        "bad_missing (" + str(folder / "gone.wav"),
        "missing word label",
        f"{duplicate} (",
        "duplicate ID",
        "unknown word label 'maybe'",
        "--skip_bad_items=True",
    ]:
        assert expected in report, expected
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "save").exists() or not list((tmp_path / "run" / "save").glob("CKPT*"))


def test_skip_bad_items_trains_without_them_and_logs_the_count(bad_manifests, run_recipe, tmp_path):
    _, args, _ = bad_manifests
    run = tmp_path / "run"
    result = run_recipe("KWS", "scratch.yaml", *args, "--output_folder", run, *TINY_TRAINING, "--skip_bad_items=True")
    assert result.returncode == 0, result.stderr[-4000:]
    log = (run / "log.txt").read_text()
    assert "skip_bad_items: skipping 9 of 70 manifest items cannot be used (train: 8 of 29, valid: 1 of 21)" in log
    assert log.count("are not 16 kHz mono") == 1
    assert "1 audio files are not 16 kHz mono (first: " in log and "stereo.wav, 44100 Hz, 2 channels" in log
    kept = read_rows(run / "save" / "checked_manifests" / "train.csv", 100)
    assert len(kept) == 21 and "stereo_ok" in {row["ID"] for row in kept}
    assert (run / "summary.json").is_file()


def test_a_missing_required_key_names_the_key_and_the_file(tmp_path):
    text = (KWS_YAMLS / "scratch.yaml").read_text().replace("test_dataloader_opts:\n    batch_size: 64\n", "")
    path = tmp_path / "no_test_loader.yaml"
    path.write_text(text)
    argv = [str(path), "--data_folder", str(tmp_path), "--output_folder", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match=rf"error: {path}: missing required keys: 'test_dataloader_opts'; add"):
        run_experiment(UtteranceClassifierBrain, prepare_classification, argv)


def test_a_key_that_dataio_prepare_reads_names_the_key_and_the_file(tiny_corpus, run_recipe, tmp_path):
    path = tmp_path / "no_targets.yaml"
    path.write_text((KWS_YAMLS / "scratch.yaml").read_text().replace("targets: [word]\n", ""))
    relative = os.path.relpath(path, KWS_YAMLS)  # run_recipe runs hparams/<name>
    result = run_recipe(
        "KWS",
        relative,
        "--data_folder",
        tiny_corpus[0] / "words" / "target",
        "--output_folder",
        tmp_path / "run",
        *TINY_TRAINING,
    )
    assert result.returncode != 0
    assert f"error: hparams/{relative}: missing required key 'targets' (the recipe reads it)" in result.stderr


def test_a_malformed_pretrained_checkpoint_names_the_file(bad_manifests, run_recipe, tmp_path):
    _, args, _ = bad_manifests
    source = tmp_path / "pretrained"
    source.mkdir()
    (source / "encoder.ckpt").write_bytes(b"\x80\x02 truncated pickle")
    result = run_recipe(
        "KWS",
        "finetune.yaml",
        *args,
        "--output_folder",
        tmp_path / "run",
        "--pretrained_source",
        source,
        "--skip_bad_items=True",
        *TINY_TRAINING,
    )
    assert result.returncode != 0
    assert f"error: cannot read '{source}/encoder.ckpt', the checkpoint of module 'encoder'" in result.stderr
