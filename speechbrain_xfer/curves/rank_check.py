"""``sbx rank-check``: does ``sbx rank`` predict fine-tuned accuracy? Ranks candidate encoders (and layers) on
each task's k-shot training set, fine-tunes every candidate on the same set (``finetune`` and ``frozen``, several
seeds), and reports Kendall's tau between each estimator's scores and the mean test accuracies, and the time of
the ranking against the time of the fine-tuning.

A candidate is ``NAME=PATH``: an ``sbx export`` folder of a ConvEncoder run (its encoder's output; the
``finetune`` and ``frozen`` recipes), or ``NAME=PATH@0,2,4``, a hub-format encoder folder, one candidate per
hidden state listed (``@all``: every one; the ``hf_finetune`` and ``hf_frozen`` recipes, reading that hidden
state: ``--layer_sum False --output_layer K``).
"""

import csv
import dataclasses
import logging
import os
import shutil
import statistics

from speechbrain_xfer.curves.grid import TASKS, cache_folder, grid, recipe_methods, run_grid
from speechbrain_xfer.curves.rank import rank_candidates
from speechbrain_xfer.curves.report import read_summaries
from speechbrain_xfer.transferability import ESTIMATORS

logger = logging.getLogger(__name__)

METHODS = ("finetune", "frozen")
COLUMNS = (
    "task",
    "candidate",
    "path",
    "layer",
    *ESTIMATORS,
    "rank_seconds",
    *(f"{method}_{part}" for method in METHODS for part in ("acc", "std", "seconds")),
    "seeds",
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One encoder (and, for a hub-format one, one of its hidden states) to rank and fine-tune."""

    name: str
    path: str
    layer: object  # "last" (an sbx export's encoder output) or the index of a hub-format hidden state

    @property
    def encoder(self):
        return "conv" if self.layer == "last" else "hf"

    @property
    def overrides(self):
        if self.encoder == "conv":
            return []
        return ["--layer_sum", "False", "--output_layer", str(self.layer)]


def parse_candidates(specs):
    """``["ctc=a/encoder", "hf=b@0,2"]`` -> Candidates ``ctc``, ``hf@0``, ``hf@2``; ``@all`` reads the config."""
    from speechbrain_xfer.encoders.hf_folders import is_complete

    candidates = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"candidate {spec!r}: use NAME=PATH or NAME=PATH@LAYERS (e.g. hf=folder@0,2,4)")
        path, _, layers = rest.partition("@")
        if not os.path.isdir(path):
            raise ValueError(f"candidate {name}: {path} is not a folder")
        if not layers:
            if os.path.isfile(os.path.join(path, "config.json")):
                raise ValueError(f"candidate {name}: a hub-format encoder; name its hidden states, e.g. {spec}@all")
            candidates.append(Candidate(name, path, "last"))
            continue
        if not is_complete(path):
            raise ValueError(f"candidate {name}: {path} is not a complete hub-format encoder folder")
        indices = range(_num_states(path)) if layers == "all" else [int(i) for i in layers.split(",")]
        candidates += [Candidate(f"{name}@{i}", path, i) for i in indices]
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must differ: {names}")
    return candidates


def _num_states(path):
    """The hidden states of an HF encoder folder: its layers' outputs and the input of the first."""
    from huggingface_hub.constants import HF_HUB_CACHE

    from speechbrain_xfer.encoders.hf_sources import encoder_layer_count, read_config

    return encoder_layer_count(read_config(path, HF_HUB_CACHE), path) + 1


def ranking(candidates, task, corpus, shots, out, progress=True):
    """``{candidate name: {logme, hscore, rank_seconds}}`` on the task's ``train_k{shots}.csv``.

    Each folder is ranked once (all its hidden states at a time) into a new feature cache under ``out``, so
    the time is that of a ranking from nothing; the scores are kept in ``<out>/rank/<task>.csv`` and read from
    there when the command runs again with no new candidate.
    """

    path = os.path.join(out, "rank", f"{task}.csv")
    if os.path.isfile(path):
        with open(path, newline="") as f:
            kept = {
                row["candidate"]: {k: float(row[k]) for k in (*ESTIMATORS, "rank_seconds")} for row in csv.DictReader(f)
            }
        if all(c.name in kept for c in candidates):
            return kept
    manifest = os.path.join(corpus, TASKS[task].corpus, f"train_k{shots}.csv")
    scores = {}
    for index, folder in enumerate(dict.fromkeys(c.path for c in candidates)):
        layers = "all" if any(c.path == folder and c.encoder == "hf" for c in candidates) else "last"
        cache = os.path.join(out, "rank", "cache", task, str(index))
        shutil.rmtree(cache, ignore_errors=True)  # timed from nothing, also after an interruption
        rows = rank_candidates(
            manifest, TASKS[task].label, [folder], layers=layers, cache_root=cache, progress=progress
        )
        by_layer = {row["layer"]: row for row in rows}
        for c in (c for c in candidates if c.path == folder):
            row = by_layer[c.layer]
            scores[c.name] = {**{e: row[e] for e in ESTIMATORS}, "rank_seconds": row["seconds"]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["candidate", *ESTIMATORS, "rank_seconds"])
        writer.writeheader()
        writer.writerows({"candidate": name, **values} for name, values in scores.items())
    return scores


def candidate_runs(candidate, tasks, shots, seeds, out):
    """The fine-tuning runs of one candidate: ``finetune`` and ``frozen`` (``hf_*`` for a hub-format one)."""
    methods = recipe_methods(METHODS, candidate.encoder)
    return grid(tasks, methods, [shots], seeds, os.path.join(out, "runs", candidate.name))


def rows_of(candidates, tasks, shots, seeds, scores, out):
    """One row per (task, candidate): the scores and the mean (std) test accuracy of each method over seeds."""
    rows = []
    for task in tasks:
        for candidate in candidates:
            runs = candidate_runs(candidate, [task], shots, seeds, out)
            summaries = read_summaries(runs)
            row = {"task": task, "candidate": candidate.name, "path": candidate.path, "layer": candidate.layer}
            row.update(scores[task][candidate.name])
            for method in METHODS:
                done = [s for run, s in summaries.items() if run.base_method == method]
                accuracies = [100 * s["test"]["accuracy"] for s in done]
                row[f"{method}_acc"] = statistics.mean(accuracies) if accuracies else float("nan")
                row[f"{method}_std"] = statistics.pstdev(accuracies) if accuracies else float("nan")
                row[f"{method}_seconds"] = sum(s["train_time_s"] for s in done)
            row["seeds"] = len(summaries) // len(METHODS)
            rows.append(row)
    return rows


def kendall_taus(rows, tasks):
    """``{(task, estimator, method): tau}``: Kendall's tau-b between the scores and the mean accuracies."""
    from scipy.stats import kendalltau

    taus = {}
    for task in tasks:
        of_task = [row for row in rows if row["task"] == task]
        for estimator in ESTIMATORS:
            for method in METHODS:
                tau = kendalltau([r[estimator] for r in of_task], [r[f"{method}_acc"] for r in of_task]).statistic
                taus[task, estimator, method] = float(tau)
    return taus


def taus_against_curves(ranked, curve_rows, shots):
    """Kendall's tau of LogME against the accuracies a learning-curve grid measured from the same candidates.

    Arguments
    ---------
    ranked : list of dict
        ``sbx rank``'s rows (``candidate``, ``layer``, ``logme``); the ``last`` layer of each candidate is used.
    curve_rows : list of dict
        The rows of an ``sbx curve`` grid's ``curves.csv``; a row belongs to the candidate its ``source`` names.
    shots : int
        The shot count whose accuracies (mean over seeds) are compared.

    Returns
    -------
    list of dict
        Per method (``finetune`` for ``finetune``, ``hf_finetune`` and ``ge2e_finetune`` alike) with runs from
        two candidates or more, then :data:`BEST_METHOD` (each candidate's best method): ``method``,
        ``candidates`` (``[(candidate, logme, mean accuracy)]``, best LogME first) and ``tau`` (None with fewer
        than 3 candidates).
    """
    from scipy.stats import kendalltau

    scores = {os.path.normpath(r["candidate"]): r["logme"] for r in ranked if r["layer"] == "last"}
    values = {}
    for row in curve_rows:
        source = os.path.normpath(row["source"]) if row.get("source") else None  # scratch has none
        if source in scores and str(row["shots"]) == str(shots):
            values.setdefault(row["method"], {}).setdefault(source, []).append(float(row["value"]))
    means = {method: {c: statistics.fmean(v) for c, v in by_source.items()} for method, by_source in values.items()}
    # Each candidate's best method: what a user who fine-tunes each source its best way gets from it.
    best = {}
    for by_source in means.values():
        for candidate, mean in by_source.items():
            best[candidate] = max(best.get(candidate, mean), mean)
    results = []
    for method, by_source in [*means.items(), (BEST_METHOD, best)]:
        if len(by_source) < 2:
            continue
        points = sorted(((c, scores[c], acc) for c, acc in by_source.items()), key=lambda p: -p[1])
        tau = kendalltau([p[1] for p in points], [p[2] for p in points]).statistic if len(points) >= 3 else None
        results.append({"method": method, "candidates": points, "tau": None if tau is None else float(tau)})
    return results


BEST_METHOD = "best method of each"
"""The row of :func:`taus_against_curves` that compares each candidate's best method."""


def time_ratio(rows):
    """``(rank seconds, fine-tuning seconds)``: each folder's ranking counted once per task, against the training
    time of every fine-tuning run."""
    ranked = {(row["task"], row["path"]): row["rank_seconds"] for row in rows}
    tuned = sum(row[f"{method}_seconds"] for row in rows for method in METHODS)
    return sum(ranked.values()), tuned


def write_report(rows, taus, seconds, out):
    """``transferability.csv`` and ``transferability.md`` in ``out``."""
    with open(os.path.join(out, "transferability.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    lines = ["Kendall's tau between each estimator's scores and the mean test accuracy over seeds:", ""]
    lines += ["| task | " + " | ".join(f"{e} vs {m}" for e in ESTIMATORS for m in METHODS) + " |"]
    lines += ["|---" * (1 + len(ESTIMATORS) * len(METHODS)) + "|"]
    for task in tasks:
        values = " | ".join(f"{taus[task, e, m]:.2f}" for e in ESTIMATORS for m in METHODS)
        lines.append(f"| {task} | {values} |")
    rank_s, tuned_s = seconds
    lines += [
        "",
        f"Time: ranking {rank_s:.0f} s, fine-tuning {tuned_s:.0f} s (training only), ratio 1/{tuned_s / rank_s:.0f}.",
    ]
    for task in tasks:
        lines += ["", f"{task} (test accuracy %, mean +- std over seeds):", ""]
        lines += ["| candidate | logme | hscore | finetune | frozen |", "|---|---|---|---|---|"]
        for row in sorted((r for r in rows if r["task"] == task), key=lambda r: -r["logme"]):
            accuracies = " | ".join(f"{row[f'{m}_acc']:.1f} +- {row[f'{m}_std']:.1f}" for m in METHODS)
            lines.append(f"| {row['candidate']} | {row['logme']:.4f} | {row['hscore']:.3f} | {accuracies} |")
    with open(os.path.join(out, "transferability.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def run_rank_check(
    candidates,
    tasks,
    corpus,
    recipes_root,
    out,
    shots=10,
    seeds=(1, 2, 3),
    jobs=2,
    recipe_args=(),
    progress=True,
    launcher=None,
):
    """Ranks, fine-tunes and reports (see the module); returns ``(rows, taus, failed runs)``.

    ``launcher``: a :class:`~speechbrain_xfer.curves.slurm.SlurmLauncher` runs the fine-tuning runs as
    SLURM jobs, every candidate's queued before waiting for any.
    """
    os.makedirs(out, exist_ok=True)
    scores = {task: ranking(candidates, task, corpus, shots, out, progress) for task in tasks}
    failed = []
    for candidate in candidates:
        runs = candidate_runs(candidate, tasks, shots, seeds, out)
        logger.info("fine-tuning %s (%s): %d runs", candidate.name, candidate.path, len(runs))
        failed += run_grid(
            runs,
            recipes_root,
            corpus,
            candidate.path,
            jobs=jobs,
            progress=progress,
            extra_overrides=["--noprogressbar", *candidate.overrides, *recipe_args],
            cache=cache_folder(os.path.join(out, "runs", candidate.name)),
            launcher=launcher,
            wait=launcher is None,
        )
    if launcher is not None:
        failed += launcher.wait(progress)
    rows = rows_of(candidates, tasks, shots, seeds, scores, out)
    taus = kendall_taus(rows, tasks)
    print(write_report(rows, taus, time_ratio(rows), out))
    return rows, taus, failed
