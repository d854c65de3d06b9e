"""``sbx curve --recipe <dir> --data <dir>`` on real recordings: a plain folder with train.csv, valid.csv and
test.csv made from the Free Spoken Digit Dataset (CC BY-SA 4.0; 3 speakers, 3 digits), kept read-only.

The KWS recipe's YAML does not state the number of classes (``n_classes: auto``); the grid draws its k-shot
lists into its output folder, and nothing in the data folder or the audio folder changes.
"""

import csv
import os
import shutil

import pytest
from recipe_runs import checksums
from recipe_runs import run_sbx as sbx

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KWS_RECIPE = os.path.join(REPO, "recipes", "SynthSpeech", "KWS")
RECIPE_ARGS = "--number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"
DIGITS = {"0": "zero", "1": "one", "2": "two"}
# Speaker-disjoint: train george, valid nicolas, test theo; clips per digit.
SPLITS = {"train": ("george", 4), "valid": ("nicolas", 2), "test": ("theo", 3)}


def make_read_only(folder):
    for dirpath, _, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


@pytest.fixture(scope="module")
def fsdd_folder(fsdd_recordings, tmp_path_factory):
    """``(data folder, audio folder)``: only train.csv, valid.csv and test.csv in the first, with absolute paths
    to the 8 kHz clips copied into the second; both read-only."""
    root = tmp_path_factory.mktemp("own")
    data, audio = root / "fsdd", root / "audio"
    data.mkdir()
    audio.mkdir()
    for split, (speaker, clips) in SPLITS.items():
        rows = []
        for digit, word in DIGITS.items():
            for index in range(clips):
                name = f"{digit}_{speaker}_{index}.wav"
                shutil.copyfile(os.path.join(fsdd_recordings, name), audio / name)
                rows.append({"ID": name[:-4], "wav": str(audio / name), "word": word})
        with open(data / f"{split}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["ID", "wav", "word"])
            writer.writeheader()
            writer.writerows(rows)
    make_read_only(data)
    make_read_only(audio)
    yield data, audio
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)  # let pytest clean up


@pytest.fixture(scope="module")
def own_grid(fsdd_folder, pretrained_encoder, tmp_path_factory):
    data, audio = fsdd_folder
    before = checksums(data, audio)
    out = tmp_path_factory.mktemp("own-curves")
    args = ["curve", "--recipe", KWS_RECIPE, "--data", data, "--methods", "scratch,finetune", "--shots", "1,2,4"]
    args += ["--seeds", 1, "--jobs", 1, "--pretrained", pretrained_encoder, "--out", out, "--target", 80]
    result = sbx(*args, "--recipe-args", RECIPE_ARGS)
    assert result.returncode == 0, result.stderr[-4000:]
    return out, result, before


def test_the_grid_reports_every_run_of_the_plain_folder(own_grid):
    out, _, _ = own_grid
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["shots"]) for r in rows) == [
        (m, k) for m in ("finetune", "scratch") for k in ("1", "2", "4")
    ]
    assert all(r["task"] == "fsdd" and r["metric"] == "accuracy" and 0 <= float(r["value"]) <= 1 for r in rows)
    markdown = (out / "curves.md").read_text()
    assert "### fsdd: test accuracy (%)" in markdown
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_the_label_budget_is_printed_and_written(own_grid):
    out, result, _ = own_grid
    section = "### Labels needed for 80 % (clips per class)"
    assert section in result.stdout and section in (out / "curves.md").read_text()
    for method in ("scratch", "finetune"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"| fsdd | {method} |"))
        verdict = line.split("|")[3].strip()
        # Three shot counts fit the curve: a verdict, never the "needs 3 or more shot counts" refusal.
        assert verdict.startswith(("about", "reached", "not reached", "more than")), line


def test_the_k_shot_lists_are_drawn_into_the_output_folder_stratified_and_nested(own_grid):
    out, _, _ = own_grid
    ids = {}
    for k in (1, 2, 4):
        with open(out / "subsets" / "fsdd" / f"train_k{k}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert sorted(r["word"] for r in rows) == sorted(list(DIGITS.values()) * k)
        ids[k] = {r["ID"] for r in rows}
    assert ids[1] < ids[2] < ids[4]


def test_the_number_of_classes_comes_from_the_training_labels(own_grid):
    out, _, _ = own_grid
    saved = (out / "runs" / "fsdd" / "finetune" / "k1" / "seed1" / "hyperparams.yaml").read_text().splitlines()
    assert any(line.split("#")[0].strip() == "n_classes: 3" for line in saved)
    log = (out / "runs" / "fsdd" / "finetune" / "k1" / "seed1" / "log.txt").read_text()
    assert "n_classes: auto -> 3 word classes" in log


def test_nothing_in_the_read_only_data_changed(own_grid, fsdd_folder):
    _, _, before = own_grid
    assert checksums(*fsdd_folder) == before
    assert sorted(os.listdir(fsdd_folder[0])) == ["test.csv", "train.csv", "valid.csv"]


def test_the_caches_are_under_the_output_folder(own_grid):
    out, _, _ = own_grid
    assert (out / "cache" / "fsdd" / ".audio_checks.json").is_file()


def test_the_model_card_names_the_data_set(own_grid, tmp_path):
    out, _, _ = own_grid
    result = sbx("export", out / "runs" / "fsdd" / "finetune" / "k4" / "seed1", tmp_path / "export")
    assert result.returncode == 0, result.stderr[-4000:]
    card = (tmp_path / "export" / "README.md").read_text()
    assert "on fsdd (KWS)" in card and "SynthSpeech" not in card


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ("valid.csv", "no valid.csv; the folder needs train.csv, valid.csv and test.csv"),
        ("", "no hparams/nomethod.yaml"),
    ],
)
def test_a_missing_input_is_one_line_without_a_traceback(fsdd_folder, tmp_path, remove, expected):
    data = tmp_path / "mine"
    shutil.copytree(fsdd_folder[0], data)
    if remove:
        os.chmod(data, 0o755)
        os.remove(data / remove)
    methods = "scratch" if remove else "nomethod"
    result = sbx("curve", "--recipe", KWS_RECIPE, "--data", data, "--methods", methods, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stderr.strip().splitlines()[-1], result.stderr
    assert not (tmp_path / "out").exists()


def test_tune_takes_the_same_recipe_and_data_folder(fsdd_folder, tmp_path):
    data, audio = fsdd_folder
    before = checksums(data, audio)
    args = ["tune", "--recipe", KWS_RECIPE, "--data", data, "--methods", "scratch", "--shots", 2, "--jobs", 1]
    result = sbx(*args, "--lrs", "0.001,0.003", "--out", tmp_path, "--recipe-args", RECIPE_ARGS)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "tuning.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["task"], r["method"], r["shots"], r["lr"]) for r in rows) == [
        ("fsdd", "scratch", "2", "0.001"),
        ("fsdd", "scratch", "2", "0.003"),
    ]
    assert all(0.0 <= float(r["valid"]) <= 100.0 for r in rows)
    assert checksums(data, audio) == before
