"""The RAVDESS emotion recipe on real clips: a miniature release (actors 01 and 02 to train, 17 to validate, 21 to
test) copied from RAVDESS speech (CC BY-NC-SA 4.0), prepared with its labels read from the file names, trained on,
and run as a learning curve."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_runs import RECIPE_ENV, TINY_TRAINING, checksums, read_summary, run_sbx
from replica_tools import load_module, read_csv

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "RAVDESS" / "emotion"
prepare_ravdess = load_module(RECIPE / "ravdess_prepare.py").prepare_ravdess
ACTORS = ("01", "02", "17", "21")
FOUR = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}


@pytest.fixture(scope="module")
def mini_ravdess(ravdess_folder, tmp_path_factory):
    """A folder with the release's layout, the four actors' clips of four emotions and one other (calm)."""
    root = tmp_path_factory.mktemp("ravdess")
    for actor in ACTORS:
        (root / f"Actor_{actor}").mkdir()
        for name in sorted(os.listdir(os.path.join(ravdess_folder, f"Actor_{actor}"))):
            if name.split("-")[2] in (*FOUR, "02"):
                shutil.copyfile(os.path.join(ravdess_folder, f"Actor_{actor}", name), root / f"Actor_{actor}" / name)
    return root


def test_prepare_reads_the_labels_from_the_file_names_and_splits_by_actor(mini_ravdess, tmp_path):
    prepare_ravdess(str(mini_ravdess), str(tmp_path))
    splits = {split: read_csv(tmp_path / f"{split}.csv") for split in ("train", "valid", "test")}
    assert {split: {row["spk_id"] for row in rows} for split, rows in splits.items()} == {
        "train": {"actor01", "actor02"},
        "valid": {"actor17"},
        "test": {"actor21"},
    }
    for rows in splits.values():
        for row in rows:
            code = os.path.basename(row["wav"]).split("-")
            assert row["emotion"] == {**FOUR, "02": "calm"}[code[2]] and row["ID"] == os.path.basename(row["wav"])[:-4]
            assert row["intensity"] == ("normal" if code[3] == "01" else "strong")
            assert row["gender"] == ("male" if int(code[6][:2]) % 2 else "female")
    assert {row["emotion"] for row in splits["train"]} == {"neutral", "calm", "happy", "sad", "angry"}
    one, three = ({row["ID"] for row in read_csv(tmp_path / f"train_k{k}.csv")} for k in (1, 3))
    assert len(one) == 5 and len(three) == 15 and one < three


def test_four_emotions_leave_the_others_out(mini_ravdess, tmp_path):
    prepare_ravdess(str(mini_ravdess), str(tmp_path), emotions=4)
    assert {row["emotion"] for row in read_csv(tmp_path / "train.csv")} == set(FOUR.values())


def test_prepare_names_a_folder_that_is_not_ravdess(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a RAVDESS speech folder: it has no Actor_01/"):
        prepare_ravdess(str(tmp_path), str(tmp_path / "out"))


def test_the_recipe_prepares_a_release_and_trains_four_emotions(mini_ravdess, pretrained_encoder, tmp_path):
    before = checksums(mini_ravdess)
    out = tmp_path / "run"
    command = [sys.executable, "train.py", "hparams/l2sp.yaml", "--data_folder", mini_ravdess, "--emotions", 4]
    command += ["--pretrained_source", pretrained_encoder, "--output_folder", out, *TINY_TRAINING]
    result = subprocess.run(
        list(map(str, command)), cwd=RECIPE, env=RECIPE_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert 0.0 <= read_summary(out)["test"]["accuracy"] <= 1.0
    assert {row["emotion"] for row in read_csv(out / "manifests" / "test.csv")} == set(FOUR.values())
    assert checksums(mini_ravdess) == before


def test_sbx_curve_runs_the_recipe_on_a_prepared_folder(mini_ravdess, pretrained_encoder, tmp_path):
    prepared, out = tmp_path / "prepared", tmp_path / "curves"
    prepare_ravdess(str(mini_ravdess), str(prepared), emotions=4)
    args = ["curve", "--recipe", RECIPE, "--data", prepared, "--methods", "scratch,finetune", "--shots", "1,3"]
    args += ["--jobs", 1, "--pretrained", pretrained_encoder, "--out", out, "--name", "ravdess4"]
    args += ["--recipe-args", "--emotions=4 --number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"]
    result = run_sbx(*args)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = read_csv(out / "curves.csv")
    assert sorted((r["task"], r["method"], r["shots"]) for r in rows) == [
        ("ravdess4", m, k) for m in ("finetune", "scratch") for k in ("1", "3")
    ]


def test_the_ge2e_encoder_fine_tunes_on_ravdess_and_exports_for_encoder_classifier(mini_ravdess, ge2e_source, tmp_path):
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.cli import main

    out = tmp_path / "run"
    command = [sys.executable, "train.py", "hparams/ge2e_finetune.yaml", "--data_folder", mini_ravdess]
    command += ["--emotions", 4, "--pretrained_source", ge2e_source, "--output_folder", out, *TINY_TRAINING]
    result = subprocess.run(
        list(map(str, command)), cwd=RECIPE, env=RECIPE_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    export = tmp_path / "export"
    assert main(["export", str(out), str(export)]) == 0
    classifier = EncoderClassifier.from_hparams(source=str(export), savedir=tmp_path / "savedir")
    _, score, _, label = classifier.classify_file(read_csv(out / "manifests" / "test.csv")[0]["wav"])
    assert label[0] in set(FOUR.values()) and float(score[0]) <= 0.0  # a log-probability
