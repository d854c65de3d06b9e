#!/usr/bin/env python3
"""What a shorter early-stopping patience would have kept, replayed on a finished grid's validation histories.

Each run's ``summary.json`` holds its validation score after every epoch.
For each patience given, this replays the recipes' stopping rule,
SpeechBrain's ``EpochCounterWithStopper`` (stop after ``patience`` epochs
without a better validation score; "better" as it computes it, which for
a score to maximize lets a tie count as better), on that history and
prints, per run, the epochs it would have trained and whether the best
epoch, the one the test score comes from, would have been the
same as with the recipes' patience, then the training time the runs would
have taken (each run's time scaled by its epochs). ``--strict`` replays a
rule where only a strictly better score counts. Nothing is trained.

    python benchmarks/patience_replay.py results/demo [--patience 4] [--shorter 2,3] [--strict]
"""

import argparse
import glob
import json
import os


def stopping_point(history, patience, higher_is_better, min_delta=1e-6, strict=False):
    """(epochs trained, index of the last improvement, its score) under ``patience`` on ``[[step, score], ...]``.

    Example
    -------
    >>> stopping_point([[1, 0.5], [2, 0.5], [3, 0.4], [4, 0.4]], 2, higher_is_better=True)  # the tie counts
    (4, 1, 0.5)
    >>> stopping_point([[1, 0.5], [2, 0.5], [3, 0.4], [4, 0.4]], 2, higher_is_better=True, strict=True)
    (3, 0, 0.5)
    """
    sign = -1 if higher_is_better else 1
    best, best_index, index = None, None, 0
    for index, (_, score) in enumerate(history):
        # EpochCounterWithStopper.update_metric's test, min_delta included.
        if best is None or (sign * score < sign * best if strict else sign * score < sign * (1 - min_delta) * best):
            best, best_index = score, index
        elif index - best_index >= patience:
            break
    return index + 1, best_index, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="a folder with runs/<task>/<method>/k<shots>/seed<n>/summary.json")
    parser.add_argument("--patience", type=int, default=4, help="the patience the runs were trained with")
    parser.add_argument("--shorter", default="2,3", help="comma-separated patiences to replay")
    parser.add_argument("--strict", action="store_true", help="only a strictly better score counts as better")
    args = parser.parse_args()
    shorter = [int(p) for p in args.shorter.split(",")]
    paths = sorted(glob.glob(os.path.join(args.grid, "runs", "*", "*", "*", "seed*", "summary.json")))
    changed, seconds, total = dict.fromkeys(shorter, 0), dict.fromkeys(shorter, 0.0), 0.0
    print(f"{'run':32s} epochs " + "".join(f"| patience {p}: epochs, best epoch {'':10s}" for p in shorter))
    for path in paths:
        with open(path) as f:
            summary = json.load(f)
        history, higher = summary["valid_history"], summary["higher_is_better"]
        _, full_best, full_score = stopping_point(history, args.patience, higher)
        total += summary["train_time_s"]
        cells = []
        for p in shorter:
            epochs, best, score = stopping_point(history, p, higher, strict=args.strict)
            same = best == full_best
            changed[p] += not same
            seconds[p] += summary["train_time_s"] * epochs / len(history)
            cells.append(f"| {epochs:3d}, {'same' if same else f'{score:.3f} instead of {full_score:.3f}':22s}")
        run = os.path.relpath(os.path.dirname(path), os.path.join(args.grid, "runs"))
        print(f"{run:32s} {len(history):6d} " + "".join(cells))
    for p in shorter:
        print(
            f"patience {p}{' (strict)' if args.strict else ''}: another best epoch in {changed[p]} of "
            f"{len(paths)} runs; training time {seconds[p]:.0f} s instead of {total:.0f} s"
        )


if __name__ == "__main__":
    main()
