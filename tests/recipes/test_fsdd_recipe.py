"""The FSDD recipe on real clips: a miniature download (all six speakers, three digits, two clips each) copied
from the Free Spoken Digit Dataset (CC BY-SA 4.0), prepared, trained on, and run as a learning curve."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_runs import RECIPE_ENV, TINY_TRAINING, checksums, read_summary, run_sbx
from replica_tools import load_module, read_csv

from speechbrain_xfer.recipe_config import resolved_values

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "FSDD" / "KWS"
prepare_fsdd = load_module(RECIPE / "fsdd_prepare.py").prepare_fsdd
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGITS = (0, 1, 2)
CLIPS = 2


@pytest.fixture(scope="module")
def mini_fsdd(fsdd_recordings, tmp_path_factory):
    """A folder with the layout of an FSDD download: ``recordings/{digit}_{speaker}_{index}.wav``."""
    root = tmp_path_factory.mktemp("fsdd")
    (root / "recordings").mkdir()
    for speaker in SPEAKERS:
        for digit in DIGITS:
            for index in range(CLIPS):
                name = f"{digit}_{speaker}_{index}.wav"
                shutil.copyfile(os.path.join(fsdd_recordings, name), root / "recordings" / name)
    return root


def test_prepare_writes_speaker_disjoint_manifests_and_nested_k_shot_lists(mini_fsdd, tmp_path):
    prepare_fsdd(str(mini_fsdd), str(tmp_path))
    speakers = {
        split: {row["spk_id"] for row in read_csv(tmp_path / f"{split}.csv")} for split in ("train", "valid", "test")
    }
    assert speakers == {"train": {"george", "jackson", "lucas"}, "valid": {"nicolas"}, "test": {"theo", "yweweler"}}
    test = read_csv(tmp_path / "test.csv")
    assert len(test) == 2 * len(DIGITS) * CLIPS and {row["word"] for row in test} == {"zero", "one", "two"}
    assert all(os.path.isabs(row["wav"]) and os.path.isfile(row["wav"]) for row in test)
    assert all(0.1 < float(row["duration"]) < 2.0 for row in test)  # FSDD's clips are trimmed words
    one, three = ({row["ID"] for row in read_csv(tmp_path / f"train_k{k}.csv")} for k in (1, 3))
    assert len(one) == len(DIGITS) and len(three) == 3 * len(DIGITS) and one < three
    mtime = os.path.getmtime(tmp_path / "train.csv")
    prepare_fsdd(str(mini_fsdd), str(tmp_path))  # the same options: nothing is written again
    assert os.path.getmtime(tmp_path / "train.csv") == mtime


def test_prepare_names_a_folder_that_is_not_fsdd(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an FSDD folder: it has no recordings/"):
        prepare_fsdd(str(tmp_path), str(tmp_path / "out"))


def test_prepare_names_a_speaker_without_clips(mini_fsdd, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no clip of speaker\(s\) \['alice'\]"):
        prepare_fsdd(str(mini_fsdd), str(tmp_path), test_speakers=["alice"])


def test_the_recipe_prepares_a_download_and_trains_without_writing_into_it(mini_fsdd, pretrained_encoder, tmp_path):
    before = checksums(mini_fsdd)
    out = tmp_path / "run"
    command = [sys.executable, "train.py", "hparams/finetune.yaml", "--data_folder", mini_fsdd]
    command += ["--pretrained_source", pretrained_encoder, "--output_folder", out, "--n_classes", 3]
    command += ["--train_csv", out / "manifests" / "train_k3.csv", *TINY_TRAINING]
    result = subprocess.run(
        list(map(str, command)), cwd=RECIPE, env=RECIPE_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = read_summary(out)
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert len(read_csv(out / "manifests" / "train_k3.csv")) == 3 * len(DIGITS)
    assert checksums(mini_fsdd) == before


def test_sbx_curve_runs_the_recipe_on_a_prepared_folder(mini_fsdd, pretrained_encoder, tmp_path):
    prepared, out = tmp_path / "prepared", tmp_path / "curves"
    prepare_fsdd(str(mini_fsdd), str(prepared))
    args = ["curve", "--recipe", RECIPE, "--data", prepared, "--methods", "scratch,frozen", "--shots", "1,3"]
    args += ["--jobs", 1, "--pretrained", pretrained_encoder, "--out", out, "--name", "fsdd"]
    args += ["--recipe-args", "--n_classes=3 --number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"]
    result = run_sbx(*args)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = read_csv(out / "curves.csv")
    assert sorted((r["task"], r["method"], r["shots"]) for r in rows) == [
        ("fsdd", m, k) for m in ("frozen", "scratch") for k in ("1", "3")
    ]
    # The prepared folder's own k-shot lists and splits, not manifests of the runs' own.
    saved = resolved_values(out / "runs" / "fsdd" / "frozen" / "k3" / "seed1" / "hyperparams.yaml")
    assert (saved["train_csv"], saved["test_csv"]) == (str(prepared / "train_k3.csv"), str(prepared / "test.csv"))
    assert not (out / "subsets").exists()


@pytest.mark.parametrize("method", ["ge2e_l2sp", "ge2e_frozen"])
def test_the_ge2e_encoder_fine_tunes_on_fsdd_and_exports_for_encoder_classifier(
    mini_fsdd, ge2e_source, method, tmp_path
):
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.cli import main

    out = tmp_path / "run"
    command = [sys.executable, "train.py", f"hparams/{method}.yaml", "--data_folder", mini_fsdd, "--n_classes", 3]
    command += ["--pretrained_source", ge2e_source, "--output_folder", out, *TINY_TRAINING]
    result = subprocess.run(
        list(map(str, command)), cwd=RECIPE, env=RECIPE_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "loaded encoder" in (out / "log.txt").read_text()  # the GE2E weights, not random ones
    export = tmp_path / "export"
    assert main(["export", str(out), str(export)]) == 0
    classifier = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    clip = read_csv(out / "manifests" / "test.csv")[0]["wav"]  # 8 kHz: the classifier resamples it
    _, score, _, label = classifier.classify_file(clip)
    assert label[0] in {"zero", "one", "two"} and float(score[0]) <= 0.0  # a log-probability
