"""``sbx curve`` on a micro grid: four real KWS recipe runs, the report, and a rerun that runs nothing."""

import csv
import os
import subprocess
import sys

import pytest

from speechbrain_xfer.curves.report import CSV_COLUMNS

pytestmark = pytest.mark.slow

RECIPE_ARGS = "--number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"


def sbx_curve(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "speechbrain_xfer.cli", "curve", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if hasattr(os, "sched_setaffinity"):
        # The grid gives each run cpu_count // jobs threads whatever OMP_NUM_THREADS says; this test keeps to one core.
        os.sched_setaffinity(process.pid, {min(os.sched_getaffinity(0))})
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, stdout, stderr


@pytest.fixture(scope="module")
def micro_grid(tiny_corpus, pretrained_encoder, tmp_path_factory):
    root, _ = tiny_corpus
    out = tmp_path_factory.mktemp("curves")
    # Keyword runs start from --pretrained-kws; --pretrained (the other tasks') is not even looked at.
    args = [
        "--task",
        "kws",
        "--shots",
        "1,3",
        "--methods",
        "scratch,l2sp",
        "--seeds",
        1,
        "--jobs",
        1,
        "--data",
        root,
        "--pretrained",
        "not/a/folder",
        "--pretrained-kws",
        pretrained_encoder,
        "--out",
        out,
        "--recipe-args",
        RECIPE_ARGS,
    ]
    code, _, stderr = sbx_curve(*args)
    assert code == 0, stderr[-4000:]
    return out, args, stderr


def test_the_report_has_a_row_per_run(micro_grid):
    out, _, _ = micro_grid
    with open(out / "curves.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert sorted((r["method"], r["shots"]) for r in rows) == [
        ("l2sp", "1"),
        ("l2sp", "3"),
        ("scratch", "1"),
        ("scratch", "3"),
    ]
    assert all(r["task"] == "kws" and r["seed"] == "1" and r["metric"] == "accuracy" for r in rows)
    assert all(0.0 <= float(r["value"]) <= 1.0 and int(r["steps"]) > 0 for r in rows)
    # A scratch run reaches its own best validation score, at one of its validation steps.
    assert all(int(r["steps_to_scratch"]) % 2 == 0 for r in rows if r["method"] == "scratch")
    markdown = (out / "curves.md").read_text()
    assert "### kws: test accuracy (%)" in markdown and "| scratch |" in markdown and "| l2sp |" in markdown
    assert markdown.index("| scratch |") < markdown.index("| l2sp |")  # the order of --methods
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("method", "shots"), [("scratch", 1), ("l2sp", 3)])
def test_each_run_trained_on_its_k_shot_manifest(micro_grid, tiny_corpus, pretrained_encoder, method, shots):
    out, _, _ = micro_grid
    folder = out / "runs" / "kws" / method / f"k{shots}" / "seed1"
    assert (folder / "log.txt").is_file() and (folder / "summary.json").is_file()
    # SpeechBrain saves the YAML with the command-line overrides applied.
    saved = (folder / "hyperparams.yaml").read_text().splitlines()
    assert f"train_csv: {tiny_corpus[0] / 'words' / 'target' / f'train_k{shots}.csv'}" in saved
    assert (f"pretrained_source: {pretrained_encoder}" in saved) == (method != "scratch")


def test_rerunning_the_grid_runs_nothing(micro_grid):
    out, args, _ = micro_grid
    summaries = sorted(out.glob("runs/**/summary.json"))
    assert len(summaries) == 4
    mtimes = [p.stat().st_mtime_ns for p in summaries]
    code, _, stderr = sbx_curve(*args)
    assert code == 0, stderr[-4000:]
    assert "4 already done, 0 to run" in stderr
    assert [p.stat().st_mtime_ns for p in summaries] == mtimes


def test_asr_curves_count_training_sentences_and_report_cer(tiny_corpus, pretrained_encoder, tmp_path):
    root, _ = tiny_corpus
    args = [
        "--task",
        "asr",
        "--shots",
        "4,8",
        "--methods",
        "scratch,finetune",
        "--seeds",
        1,
        "--jobs",
        1,
        "--data",
        root,
        "--pretrained",
        pretrained_encoder,
        "--out",
        tmp_path,
        "--recipe-args",
        RECIPE_ARGS,
    ]
    code, _, stderr = sbx_curve(*args)
    assert code == 0, stderr[-4000:]
    # Drawn into the grid's output folder: nothing is written into the corpus.
    assert not list((root / "asr" / "target").glob("train_n*.csv"))
    subsets = {n: (tmp_path / "subsets" / "asr" / f"train_n{n}.csv").read_text().splitlines()[1:] for n in (4, 8)}
    assert len(subsets[4]) == 4 and len(subsets[8]) == 8 and set(subsets[4]) <= set(subsets[8])
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["shots"]) for r in rows) == [
        ("finetune", "4"),
        ("finetune", "8"),
        ("scratch", "4"),
        ("scratch", "8"),
    ]
    assert all(r["task"] == "asr" and r["metric"] == "CER" and float(r["value"]) >= 0.0 for r in rows)
    markdown = (tmp_path / "curves.md").read_text()
    assert "### asr: test CER (%)" in markdown and "| 4 sentences | 8 sentences |" in markdown
    # CER is already in %: the table shows the values as they are.
    scratch4 = next(float(r["value"]) for r in rows if r["method"] == "scratch" and r["shots"] == "4")
    assert f"| scratch | {scratch4:.1f} |" in markdown


def test_tune_runs_every_method_at_every_learning_rate_and_chooses_on_validation(
    tiny_corpus, pretrained_encoder, tmp_path
):
    root, _ = tiny_corpus
    args = [
        "--task",
        "kws",
        "--shots",
        "3",
        "--methods",
        "scratch,l2sp",
        "--seeds",
        1,
        "--jobs",
        1,
        "--data",
        root,
        "--pretrained-kws",
        pretrained_encoder,
        "--out",
        tmp_path,
        "--recipe-args",
        RECIPE_ARGS,
        "--lrs",
        "0.01,0.0001",
    ]
    process = subprocess.run(
        [sys.executable, "-m", "speechbrain_xfer.cli", "tune", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.returncode == 0, process.stderr[-4000:]
    for lr in ("0.01", "0.0001"):
        for method in ("scratch", "l2sp"):
            saved = (tmp_path / f"lr{lr}" / "runs" / "kws" / method / "k3" / "seed1" / "hyperparams.yaml").read_text()
            assert f"lr: {lr}" in [line.split("#")[0].strip() for line in saved.splitlines()]
    with open(tmp_path / "tuning.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["lr"]) for r in rows) == [
        ("l2sp", "0.0001"),
        ("l2sp", "0.01"),
        ("scratch", "0.0001"),
        ("scratch", "0.01"),
    ]
    valid = {(r["method"], r["lr"]): float(r["valid"]) for r in rows}
    markdown = (tmp_path / "tuning.md").read_text()
    for method in ("scratch", "l2sp"):
        best = max(("0.01", "0.0001"), key=lambda lr: valid[(method, lr)])
        assert f"| kws | {method} | 3 |" in markdown
        assert f"**{valid[(method, best)]:.1f}**" in markdown.split(f"| kws | {method} | 3 |")[1].splitlines()[0]


def test_encoder_hf_runs_the_hf_recipes_from_the_hub_format_source(tiny_corpus, hf_source_encoder, tmp_path):
    root, _ = tiny_corpus
    source, _ = hf_source_encoder
    args = [
        "--encoder",
        "hf",
        "--task",
        "kws",
        "--shots",
        "1",
        "--methods",
        "scratch,frozen",
        "--seeds",
        1,
        "--jobs",
        1,
        "--data",
        root,
        "--pretrained",
        source,
        "--out",
        tmp_path,
        "--recipe-args",
        RECIPE_ARGS,
    ]
    code, _, stderr = sbx_curve(*args)
    assert code == 0, stderr[-4000:]
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["method"], r["encoder"]) for r in rows) == [("frozen", "hf"), ("scratch", "hf")]
    for method in ("hf_scratch", "hf_frozen"):
        # The run's own hyperparams.yaml: an HFEncoder built from the source (for hf_scratch, its architecture).
        text = (tmp_path / "runs" / "kws" / method / "k1" / "seed1" / "hyperparams.yaml").read_text()
        assert "!new:speechbrain_xfer.encoders.HFEncoder" in text and f"source: {source}" in text
    assert "| hf_scratch |" in (tmp_path / "curves.md").read_text()
    # A ConvEncoder export is no hub-format source: refused before any run, naming the option.
    code, _, stderr = sbx_curve(
        "--encoder",
        "hf",
        "--task",
        "kws",
        "--shots",
        "1",
        "--methods",
        "finetune",
        "--data",
        root,
        "--pretrained",
        tmp_path,
        "--out",
        tmp_path / "x",
    )
    assert code != 0 and "config.json" in stderr and "--pretrained" in stderr
