"""``sbx rank-check`` on a micro setting: a ConvEncoder export and two hidden states of the tiny hub-format
source, ranked on the tiny keyword set, each fine-tuned by real recipe runs (finetune and frozen, one seed),
then the report and a rerun that trains nothing."""

import csv
import os
import subprocess
import sys

import pytest

from speechbrain_xfer.curves.rank_check import COLUMNS, Candidate, parse_candidates

pytestmark = pytest.mark.slow

RECIPE_ARGS = "--number_of_epochs=2 --steps_per_epoch=2 --batch_size=4"


def sbx_rank_check(*args):
    command = [sys.executable, "-m", "speechbrain_xfer.cli", "rank-check", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def checked(tiny_corpus, pretrained_encoder, hf_source_encoder, tmp_path_factory):
    root, _ = tiny_corpus
    out = tmp_path_factory.mktemp("rank_check")
    args = [f"conv={pretrained_encoder}", f"hf={hf_source_encoder[0]}@0,2", "--task", "kws", "--shots", 3]
    args += ["--seeds", 1, "--jobs", 1, "--data", root, "--out", out, f"--recipe-args={RECIPE_ARGS}"]
    result = sbx_rank_check(*args)
    assert result.returncode == 0, result.stderr[-4000:]
    return out, args, result.stdout


def test_every_candidate_is_ranked_and_fine_tuned_and_tau_reported(checked):
    out, _, stdout = checked
    with open(out / "transferability.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS)
    assert [(row["candidate"], row["layer"]) for row in rows] == [("conv", "last"), ("hf@0", "0"), ("hf@2", "2")]
    for row in rows:
        assert row["seeds"] == "1" and 0 <= float(row["finetune_acc"]) <= 100 and 0 <= float(row["frozen_acc"]) <= 100
        assert float(row["rank_seconds"]) > 0 and float(row["finetune_seconds"]) > 0
    # The hidden states of one folder are ranked together, in one timed pass.
    assert rows[1]["rank_seconds"] == rows[2]["rank_seconds"] != rows[0]["rank_seconds"]
    assert (out / "runs" / "hf@2" / "runs" / "kws" / "hf_frozen" / "k3" / "seed1" / "summary.json").is_file()
    saved = (out / "runs" / "hf@2" / "runs" / "kws" / "hf_finetune" / "k3" / "seed1" / "hyperparams.yaml").read_text()
    assert "output_layer: 2" in saved, "the run reads the candidate's hidden state"
    report = (out / "transferability.md").read_text()
    assert "| kws |" in report and "ratio 1/" in report and report.strip() in stdout


def test_a_rerun_trains_nothing_and_reports_the_same(checked):
    out, args, _ = checked
    before = (out / "transferability.csv").read_text()
    result = sbx_rank_check(*args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "0 to run" in result.stderr
    assert (out / "transferability.csv").read_text() == before


def test_candidates_are_parsed_and_bad_ones_named(hf_source_encoder, pretrained_encoder, tmp_path):
    hf = str(hf_source_encoder[0])
    assert parse_candidates([f"hf={hf}@all"]) == [Candidate(f"hf@{i}", hf, i) for i in range(3)]
    assert parse_candidates([f"c={pretrained_encoder}"]) == [Candidate("c", str(pretrained_encoder), "last")]
    with pytest.raises(ValueError, match="@all"):
        parse_candidates([f"hf={hf}"])
    with pytest.raises(ValueError, match="not a folder"):
        parse_candidates([f"x={tmp_path / 'missing'}"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse_candidates([hf])
