"""Learning-curve reports: ``curves.csv``, ``curves.md`` and ``curves.png`` from finished runs.

Each run of a recipe leaves ``summary.json`` in its output folder (see
``TransferBrain.write_summary``); this module only reads those files.
"""

import csv
import json
import logging
import math
import os
import statistics
from collections import defaultdict

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "task",
    "method",
    "shots",
    "seed",
    "metric",
    "value",
    "train_time_s",
    "steps",
    "steps_to_scratch",
    "encoder",
    "source",
)


def read_summaries(runs):
    """``{run: summary}`` for the runs whose ``summary.json`` exists.

    Arguments
    ---------
    runs : iterable of Run
        Each with ``summary_path``.
    """
    found = {}
    for run in runs:
        if os.path.isfile(run.summary_path):
            with open(run.summary_path) as f:
                found[run] = json.load(f)
    return found


def steps_to_reach(history, target, higher_is_better):
    """The first optimizer step at which a validation score reached ``target``, or None.

    Example
    -------
    >>> steps_to_reach([[10, 0.2], [20, 0.5], [30, 0.4]], 0.45, True)
    20
    >>> steps_to_reach([[10, 0.2]], 0.45, True) is None
    True
    """
    for step, score in history:
        if (score >= target - 1e-9) if higher_is_better else (score <= target + 1e-9):
            return step
    return None


def best_valid(summary):
    """The best validation score of a run (the checkpoint it was tested with)."""
    scores = [score for _, score in summary["valid_history"]]
    if not scores:
        return None
    return max(scores) if summary["higher_is_better"] else min(scores)


def recorded_source(run):
    """The ``pretrained_source`` a run started from, as its ``hyperparams.yaml`` records it; "" for scratch.

    Read from the run's own record, so that a report names the source of runs made by an earlier command too.
    """
    if run.base_method == "scratch":  # hf_scratch reads only its architecture there
        return ""
    try:
        with open(os.path.join(run.folder, "hyperparams.yaml")) as f:
            for line in f:
                if line.startswith("pretrained_source:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def curve_rows(summaries):
    """One CSV row per run, with the steps it took to reach its scratch run's best validation score."""
    scratch = {
        (run.encoder, run.task, run.shots, run.seed): s for run, s in summaries.items() if run.base_method == "scratch"
    }
    rows = []
    for run, summary in sorted(summaries.items(), key=lambda item: item[0].sort_key):
        # An encoder without a scratch recipe of its own (GE2E) is compared with the recipes' scratch runs.
        reference = scratch.get((run.encoder, run.task, run.shots, run.seed)) or scratch.get(
            ("conv", run.task, run.shots, run.seed)
        )
        target = best_valid(reference) if reference else None
        reached = None
        if target is not None:
            reached = steps_to_reach(summary["valid_history"], target, summary["higher_is_better"])
        rows.append(
            {
                "task": run.task,
                "method": run.base_method,
                "shots": run.shots,
                "seed": run.seed,
                "metric": summary["metric"],
                "value": round(summary["test"][summary["metric"]], 4),
                "train_time_s": round(summary["train_time_s"], 1),
                "steps": summary["steps"],
                "steps_to_scratch": "" if reached is None else reached,
                "encoder": run.encoder,
                "source": recorded_source(run),
            }
        )
    return rows


def percent(metric):
    """How many percent one unit of ``metric`` is: accuracy is a fraction, SpeechBrain's error rates are in %."""
    return 100.0 if metric == "accuracy" else 1.0


def shots_label(task):
    """What the shots of a task count."""
    return "training sentences" if task == "asr" else "labeled examples per class"


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _shots_key(shots):
    return math.inf if shots == "all" else int(shots)


def method_label(row):
    """A row's method as the recipes name it: ``finetune``, or ``hf_finetune`` for the hub-format encoder."""
    encoder = row.get("encoder") or "conv"
    return row["method"] if encoder == "conv" else f"{encoder}_{row['method']}"


def aggregate(rows):
    """``{(task, metric): {method: {shots: (mean, std, n)}}}`` over seeds."""
    values = defaultdict(list)
    for row in rows:
        values[(row["task"], row["metric"], method_label(row), row["shots"])].append(float(row["value"]))
    table = defaultdict(lambda: defaultdict(dict))
    for (task, metric, method, shots), vals in values.items():
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        table[(task, metric)][method][shots] = (statistics.fmean(vals), std, len(vals))
    return table


def markdown_tables(rows, methods_order=None):
    """One Markdown table per task: methods down, shots across, mean +- std over seeds (in %)."""
    blocks = []
    for (task, metric), by_method in sorted(aggregate(rows).items()):
        shots = sorted({s for cells in by_method.values() for s in cells}, key=_shots_key)
        methods = [m for m in (methods_order or sorted(by_method)) if m in by_method]
        seeds = max(n for cells in by_method.values() for _, _, n in cells.values())
        unit, scale = ("sentences" if task == "asr" else "shots"), percent(metric)
        lines = [
            f"### {task}: test {metric} (%), mean +- std over {seeds} seed(s)",
            "",
            "| method | " + " | ".join(f"{s} {unit}" if s != "all" else "all" for s in shots) + " |",
            "|---|" + "---|" * len(shots),
        ]
        for method in methods:
            cells = []
            for s in shots:
                if s not in by_method[method]:
                    cells.append("")
                    continue
                mean, std, n = by_method[method][s]
                cells.append(f"{scale * mean:.1f} +- {scale * std:.1f}" if n > 1 else f"{scale * mean:.1f}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def plot_curves(rows, path, methods_order=None):
    """One panel per task: the metric against shots (log scale), one line per method, +- std shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = aggregate(rows)
    fig, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 3.6), squeeze=False)
    for ax, ((task, metric), by_method) in zip(axes[0], sorted(table.items())):
        methods = [m for m in (methods_order or sorted(by_method)) if m in by_method]
        for method in methods:
            shots = sorted(by_method[method], key=_shots_key)
            numeric = [s for s in shots if s != "all"]
            means = [percent(metric) * by_method[method][s][0] for s in numeric]
            stds = [percent(metric) * by_method[method][s][1] for s in numeric]
            (line,) = ax.plot(numeric, means, marker="o", label=method)
            ax.fill_between(
                numeric,
                [m - s for m, s in zip(means, stds)],
                [m + s for m, s in zip(means, stds)],
                color=line.get_color(),
                alpha=0.15,
            )
        ax.set_xscale("log")
        ax.set_xlabel(shots_label(task))
        ax.set_ylabel(f"test {metric} (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(summaries, out_folder, methods_order=None):
    """Writes curves.csv, curves.md and curves.png into ``out_folder``; returns the rows."""
    rows = curve_rows(summaries)
    os.makedirs(out_folder, exist_ok=True)
    write_csv(rows, os.path.join(out_folder, "curves.csv"))
    with open(os.path.join(out_folder, "curves.md"), "w") as f:
        f.write(markdown_tables(rows, methods_order))
    if rows:
        try:
            plot_curves(rows, os.path.join(out_folder, "curves.png"), methods_order)
        except ImportError:  # matplotlib comes with the demo extra; the tables do not need it
            logger.warning("curves.png not drawn: matplotlib is not installed (pip install 'speechbrain_xfer[demo]')")
    return rows
