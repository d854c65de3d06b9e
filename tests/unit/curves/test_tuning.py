from speechbrain_xfer.curves.grid import Run
from speechbrain_xfer.curves.tuning import choose, markdown_table, tuning_rows, write_tuning_report


def summary(valid, metric="accuracy"):
    history = [[40 * (i + 1), v] for i, v in enumerate(valid)]
    return {
        "metric": metric,
        "higher_is_better": metric == "accuracy",
        "valid_history": history,
        "test": {metric: 0.0},
        "steps": 40 * len(valid),
    }


def test_the_best_mean_validation_score_wins_and_the_test_split_is_not_read(tmp_path):
    runs = {
        lr: {Run("kws", "finetune", 10, s, "x"): summary(v) for s, v in zip((1, 2), vals)}
        for lr, vals in (("0.001", ([0.5, 0.8], [0.7])), ("0.003", ([0.9], [0.6, 0.65])))
    }
    rows = tuning_rows(runs)
    # Means: 0.001 -> (80 + 70) / 2 = 75; 0.003 -> (90 + 65) / 2 = 77.5.
    assert choose(rows)[("kws", "finetune", 10)] == ("0.003", {"0.001": 75.0, "0.003": 77.5})
    assert all("test" not in row for row in rows)
    assert write_tuning_report(rows, ["0.001", "0.003"], str(tmp_path)) == {("kws", "finetune", 10): "0.003"}
    assert "| kws | finetune | 10 | 75.0 | **77.5** | 0.003 |" in (tmp_path / "tuning.md").read_text()


def test_error_rates_choose_the_lowest():
    rows = tuning_rows(
        {
            lr: {Run("asr", "scratch", 25, 1, "x"): summary([cer], "CER")}
            for lr, cer in (("0.001", 40.0), ("0.003", 55.0))
        }
    )
    assert "| asr | scratch | 25 | **40.0** | 55.0 | 0.001 |" in markdown_table(choose(rows), ["0.001", "0.003"])
