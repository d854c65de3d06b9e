"""Forgetting: fine-tuned encoders under the source CTC head, scored on the source test set."""

import json

import pytest
import torch

from speechbrain_xfer.curves.forgetting import (
    CSV_COLUMNS,
    best_encoder_state,
    forgetting_rows,
    source_error_rates,
    write_forgetting,
)
from speechbrain_xfer.curves.grid import Run

pytestmark = pytest.mark.slow


def test_the_pretrained_encoder_scores_the_pretraining_runs_own_test_cer(tiny_corpus, pretrained_encoder, trained):
    root, _ = tiny_corpus
    source = root / "asr" / "source"
    tuned = best_encoder_state(trained("intent", "l2sp") / "run")
    pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    assert any(not torch.equal(tuned[k], pretrained[k]) for k in pretrained if k.endswith("weight"))
    rates = source_error_rates(
        str(pretrained_encoder),
        {"pretrained": None, "l2sp": tuned},
        str(source / "test.csv"),
        str(source),
        progress=False,
    )
    summary = json.loads((pretrained_encoder.parent / "summary.json").read_text())
    # The same utterances, model and greedy decoding as the pretraining run's own test.
    assert rates["pretrained"]["CER"] == pytest.approx(summary["test"]["CER"], abs=1e-6)
    assert rates["pretrained"]["WER"] == pytest.approx(summary["test"]["WER"], abs=1e-6)
    # A one-epoch source model and a four-step fine-tuning both transcribe little; the figure is still computed.
    assert set(rates["l2sp"]) == {"CER", "WER"} and rates["l2sp"]["CER"] >= 0.0


def test_the_table_has_a_row_per_fine_tuned_intent_run(tiny_corpus, pretrained_encoder, trained, tmp_path):
    root, _ = tiny_corpus
    run = Run("intent", "l2sp", 10, 1, str(tmp_path))
    # The grid's layout for that run, pointing at the session's trained intent run.
    run_folder = trained("intent", "l2sp") / "run"
    (tmp_path / "runs" / "intent" / "l2sp" / "k10").mkdir(parents=True)
    (tmp_path / "runs" / "intent" / "l2sp" / "k10" / "seed1").symlink_to(run_folder)
    summaries = {run: json.loads((run_folder / "summary.json").read_text())}
    other = Run("kws", "l2sp", 10, 1, str(tmp_path))  # not intent: not in the table
    rows = forgetting_rows([run, other], summaries, str(pretrained_encoder), str(root), progress=False)
    assert [(r["method"], r["shots"], r["seed"]) for r in rows] == [("l2sp", 10, 1)]
    assert rows[0]["test_accuracy"] == round(summaries[run]["test"]["accuracy"], 4)
    text = write_forgetting(rows, str(tmp_path))
    assert "| l2sp | 1 |" in text and (tmp_path / "forgetting.csv").read_text().startswith(",".join(CSV_COLUMNS))
