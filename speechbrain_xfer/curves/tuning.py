"""Equal tuning effort: every method tried at the same learning rates, chosen on the validation split.

``sbx tune`` runs the grid once per learning rate (``<out>/lr<value>/runs/...``,
each run a recipe run with ``--lr <value>``), then writes ``tuning.csv`` (one
row per run: its best validation score) and ``tuning.md`` (the mean over
seeds per method and learning rate, the chosen one in bold). The test split
is never read for the choice.
"""

import csv
import os
from collections import defaultdict

from speechbrain_xfer.curves.report import best_valid, percent

CSV_COLUMNS = ("task", "method", "shots", "seed", "lr", "metric", "valid", "steps")


def lr_folder(out, lr):
    """The grid folder of one learning rate."""
    return os.path.join(out, f"lr{lr}")


def tuning_rows(summaries_by_lr):
    """One row per finished run: its best validation score, in percent for accuracy."""
    rows = []
    for lr, summaries in summaries_by_lr.items():
        for run, summary in sorted(summaries.items(), key=lambda item: item[0].sort_key):
            valid = best_valid(summary)
            rows.append(
                {
                    "task": run.task,
                    "method": run.method,
                    "shots": run.shots,
                    "seed": run.seed,
                    "lr": lr,
                    "metric": summary["metric"],
                    "steps": summary["steps"],
                    "valid": "" if valid is None else round(valid * percent(summary["metric"]), 2),
                }
            )
    return rows


def choose(rows):
    """``{(task, method, shots): (lr, {lr: mean valid})}``: the best mean validation score wins.

    Example
    -------
    >>> rows = [{"task": "kws", "method": "finetune", "shots": 10, "lr": lr, "metric": "accuracy", "valid": v}
    ...         for lr, v in (("0.001", 80.0), ("0.003", 85.0), ("0.003", 83.0))]
    >>> choose(rows)[("kws", "finetune", 10)]
    ('0.003', {'0.001': 80.0, '0.003': 84.0})
    """
    scores = defaultdict(lambda: defaultdict(list))
    lower_is_better = {}
    for row in rows:
        if row["valid"] != "":
            key = (row["task"], row["method"], row["shots"])
            scores[key][row["lr"]].append(float(row["valid"]))
            lower_is_better[key] = row["metric"] != "accuracy"
    chosen = {}
    for key, by_lr in scores.items():
        means = {lr: sum(v) / len(v) for lr, v in by_lr.items()}
        pick = min if lower_is_better[key] else max
        chosen[key] = (pick(means, key=means.get), means)
    return chosen


def markdown_table(chosen, lrs):
    """The tuning table of :func:`choose`'s result: mean validation score per method and learning rate,
    the chosen one in bold."""
    lines = [
        "| task | method | shots | " + " | ".join(f"lr {lr}" for lr in lrs) + " | chosen |",
        "|---" * (len(lrs) + 4) + "|",
    ]
    for (task, method, shots), (best, means) in sorted(chosen.items(), key=lambda item: str(item[0])):
        cells = [(f"**{means[lr]:.1f}**" if lr == best else f"{means[lr]:.1f}") if lr in means else "" for lr in lrs]
        lines.append(f"| {task} | {method} | {shots} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def write_tuning_report(rows, lrs, out):
    """Writes ``tuning.csv`` and ``tuning.md`` in ``out``; returns the chosen learning rates."""
    chosen = choose(rows)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tuning.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out, "tuning.md"), "w") as f:
        f.write(
            "### Learning-rate choice: best validation score, mean over seeds "
            "(accuracy in %; for asr, CER in %, lower is better)\n\n"
        )
        f.write(markdown_table(chosen, lrs))
    return {key: best for key, (best, _) in chosen.items()}
