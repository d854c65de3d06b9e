import csv
import json
import os

from speechbrain_xfer.curves.grid import Run
from speechbrain_xfer.curves.report import CSV_COLUMNS, curve_rows, markdown_tables, read_summaries, write_report


def summary(history, test, metric="accuracy", higher_is_better=True, steps=None, **extra):
    """A summary.json as TransferBrain.write_summary writes it."""
    return {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "test": {metric: test, "loss": 1.0},
        "valid_history": [list(h) for h in history],
        "train_time_s": 12.345,
        "steps": steps if steps is not None else (history[-1][0] if history else 0),
        **extra,
    }


def run(method, shots=1, seed=1, task="kws", out="out"):
    return Run(task, method, shots, seed, out)


def rows_by_run(summaries):
    return {(r["task"], r["method"], r["shots"], r["seed"]): r for r in curve_rows(summaries)}


def test_steps_to_scratch_is_against_the_scratch_run_of_the_same_task_shots_and_seed():
    summaries = {
        run("scratch", seed=1): summary([(10, 0.2), (20, 0.5), (30, 0.4)], 0.5),  # best 0.5
        run("scratch", seed=2): summary([(10, 0.9)], 0.9),  # best 0.9
        run("l2sp", seed=1): summary([(10, 0.3), (20, 0.6), (30, 0.7)], 0.6),
        run("l2sp", seed=2): summary([(10, 0.3), (20, 0.6)], 0.6),
        run("l2sp", shots=3): summary([(10, 0.99)], 0.99),  # no scratch run at 3 shots
        run("scratch", task="emotion"): summary([(10, 0.1)], 0.1),  # another task's scratch does not count
        run("l2sp", task="emotion", seed=2): summary([(10, 0.5)], 0.5),
    }
    rows = rows_by_run(summaries)
    assert rows["kws", "l2sp", 1, 1]["steps_to_scratch"] == 20  # first step with valid >= 0.5
    assert rows["kws", "l2sp", 1, 2]["steps_to_scratch"] == ""  # never reached 0.9
    assert rows["kws", "l2sp", 3, 1]["steps_to_scratch"] == ""
    assert rows["emotion", "l2sp", 1, 2]["steps_to_scratch"] == ""
    assert rows["kws", "scratch", 1, 1]["steps_to_scratch"] == 20  # a scratch run reaches its own best
    assert rows["emotion", "scratch", 1, 1]["steps_to_scratch"] == 10


def test_lower_is_better_metrics_reach_the_target_from_above():
    wer = {"metric": "WER", "higher_is_better": False}
    summaries = {
        run("scratch", task="asr"): summary([(5, 80.0), (10, 60.0), (15, 70.0)], 62.0, **wer),  # best 60
        run("finetune", task="asr"): summary([(5, 65.0), (10, 55.0)], 54.0, **wer),
        run("l2sp", task="asr"): summary([(5, 90.0), (10, 61.0)], 61.0, **wer),
    }
    rows = rows_by_run(summaries)
    assert rows["asr", "finetune", 1, 1]["steps_to_scratch"] == 10
    assert rows["asr", "l2sp", 1, 1]["steps_to_scratch"] == ""
    assert rows["asr", "scratch", 1, 1]["steps_to_scratch"] == 10
    assert rows["asr", "finetune", 1, 1]["metric"] == "WER" and rows["asr", "finetune", 1, 1]["value"] == 54.0


def test_a_scratch_run_without_validation_leaves_steps_to_scratch_empty():
    rows = rows_by_run({run("scratch"): summary([], 0.5, steps=0), run("l2sp"): summary([(10, 0.9)], 0.9)})
    assert rows["kws", "l2sp", 1, 1]["steps_to_scratch"] == ""


def test_rows_hold_every_csv_column_in_run_order():
    summaries = {
        run("l2sp", shots="all"): summary([(10, 0.5)], 0.123456),
        run("l2sp", shots=10): summary([(10, 0.5)], 0.5),
        run("l2sp", shots=3): summary([(10, 0.5)], 0.5),
    }
    rows = curve_rows(summaries)
    assert [r["shots"] for r in rows] == [3, 10, "all"]
    assert all(tuple(r) == CSV_COLUMNS for r in rows)
    last = rows[-1]
    assert (last["value"], last["train_time_s"], last["steps"]) == (0.1235, 12.3, 10)


def test_markdown_gives_mean_and_std_over_seeds_in_percent():
    summaries = {
        run("scratch", shots=1, seed=1): summary([(10, 0.5)], 0.5),
        run("scratch", shots=1, seed=2): summary([(10, 0.7)], 0.7),
        run("scratch", shots="all", seed=1): summary([(10, 0.5)], 0.9),
        run("l2sp", shots=1, seed=1): summary([(10, 0.5)], 0.25),
    }
    text = markdown_tables(curve_rows(summaries), methods_order=["scratch", "l2sp"])
    lines = text.splitlines()
    assert lines[0] == "### kws: test accuracy (%), mean +- std over 2 seed(s)"
    assert lines[2] == "| method | 1 shots | all |"
    # Sample standard deviation of 50 and 70: 14.1; one seed: no +-; a cell without runs: empty.
    assert lines[4] == "| scratch | 60.0 +- 14.1 | 90.0 |"
    assert lines[5] == "| l2sp | 25.0 |  |"


def test_markdown_has_one_table_per_task_and_follows_the_method_order():
    summaries = {
        run("scratch", task="kws"): summary([(10, 0.5)], 0.5),
        run("l2sp", task="kws"): summary([(10, 0.5)], 0.5),
        run("scratch", task="emotion"): summary([(10, 0.5)], 0.5),
    }
    text = markdown_tables(curve_rows(summaries), methods_order=["scratch", "l2sp", "frozen"])
    assert text.count("### ") == 2 and text.index("### emotion") < text.index("### kws")
    kws = text[text.index("### kws") :]
    assert kws.index("| scratch |") < kws.index("| l2sp |") and "frozen" not in text


def test_write_report_writes_the_csv_the_markdown_and_the_plot(tmp_path):
    runs = [run(m, shots=k, seed=s, out=str(tmp_path)) for m in ("scratch", "l2sp") for k in (1, 3) for s in (1, 2)]
    for i, r in enumerate(runs[:-1]):  # the last run has not finished
        os.makedirs(r.folder)
        with open(r.summary_path, "w") as f:
            json.dump(summary([(10, 0.1 * i), (20, 0.05 * i)], 0.1 * i), f)
    summaries = read_summaries(runs)
    assert len(summaries) == len(runs) - 1 and runs[-1] not in summaries

    out = tmp_path / "report"
    rows = write_report(summaries, str(out), methods_order=["scratch", "l2sp"])
    with open(out / "curves.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        written = list(reader)
    assert len(written) == len(rows) == 7
    assert written[0]["method"] == "l2sp" and written[-1]["method"] == "scratch"  # task, method, shots, seed order
    assert "| scratch |" in (out / "curves.md").read_text()
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_write_report_without_runs_writes_no_plot(tmp_path):
    assert write_report({}, str(tmp_path)) == []
    assert (tmp_path / "curves.csv").read_text().strip() == ",".join(CSV_COLUMNS)
    assert not (tmp_path / "curves.png").exists()


def test_hf_rows_carry_their_encoder_and_compare_with_their_own_scratch():
    summaries = {
        run("scratch"): summary([(10, 0.9)], 0.9),
        run("hf_scratch"): summary([(10, 0.2), (20, 0.4)], 0.4),
        run("hf_finetune"): summary([(10, 0.5)], 0.5),
    }
    rows = curve_rows(summaries)
    hf = {r["method"]: r for r in rows if r["encoder"] == "hf"}
    assert set(hf) == {"scratch", "finetune"}, "the method column holds the method, the encoder its own column"
    assert hf["finetune"]["steps_to_scratch"] == 10, "against hf_scratch's best (0.4), not the ConvEncoder's (0.9)"
    assert [r["encoder"] for r in rows if r["method"] == "scratch"].count("conv") == 1
    text = markdown_tables(rows, methods_order=["scratch", "hf_scratch", "hf_finetune"])
    assert "| hf_finetune | 50.0 |" in text and "| scratch | 90.0 |" in text and "| hf_scratch | 40.0 |" in text


def test_each_row_names_its_encoder_and_the_source_its_run_started_from(tmp_path):
    runs = {m: run(m, out=str(tmp_path)) for m in ("scratch", "finetune", "ge2e_frozen", "hf_scratch")}
    for method, r in runs.items():
        os.makedirs(r.folder)
        with open(os.path.join(r.folder, "hyperparams.yaml"), "w") as f:
            f.write(f"seed: 1\npretrained_source: /sources/{method}\nlr: 0.001\n")
    rows = rows_by_run({r: summary([(10, 0.5)], 0.5) for r in runs.values()})
    assert rows["kws", "scratch", 1, 1]["source"] == ""  # no source, whatever its YAML holds
    assert rows["kws", "finetune", 1, 1]["source"] == "/sources/finetune"
    frozen = rows["kws", "frozen", 1, 1]
    assert (frozen["encoder"], frozen["source"]) == ("ge2e", "/sources/ge2e_frozen")
    assert frozen["steps_to_scratch"] == 10  # against the recipes' scratch run: GE2E has none of its own
    listed = curve_rows({r: summary([(10, 0.5)], 0.5) for r in runs.values()})
    hf_scratch = [row for row in listed if row["encoder"] == "hf"]
    assert [(row["method"], row["source"]) for row in hf_scratch] == [("scratch", "")]  # its architecture only
    tables = markdown_tables(listed)
    assert "| ge2e_frozen |" in tables and "| hf_scratch |" in tables
