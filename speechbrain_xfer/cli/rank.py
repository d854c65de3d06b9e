"""``sbx rank`` and ``sbx rank-check``: candidate encoders ranked before fine-tuning, and the ranking checked."""

import argparse
import csv
import json
import logging
import os
import shlex

from speechbrain_xfer.cli.common import (
    SEEDS_HELP,
    DeprecatedOption,
    add_launcher_options,
    example,
    launcher,
    recipes_root,
    report_failures,
    seeds,
)

logger = logging.getLogger("speechbrain_xfer")


def run_rank(args):
    """Ranks candidate encoders (and layers) for a target task by transferability estimators."""
    from speechbrain_xfer.curves.rank import CSV_COLUMNS, rank_candidates, write_rank_csv
    from speechbrain_xfer.hub.inference import format_table

    try:
        cache = args.cache or os.path.join(args.out, "cache")
        rows = rank_candidates(args.manifest, args.target, args.candidates, layers=args.layers,
                               cache_root=cache, progress=not args.json)  # fmt: skip
    except ValueError as err:
        raise SystemExit(f"sbx rank: {err}") from None
    path = os.path.join(args.out, "rank.csv")
    write_rank_csv(rows, path)
    shown = [
        {key: f"{row[key]:.4g}" if isinstance(row[key], float) else row[key] for key in CSV_COLUMNS} for row in rows
    ]
    print(json.dumps(rows, indent=1) if args.json else format_table(shown, CSV_COLUMNS))
    logger.info("ranking written to %s", path)
    if args.curves:
        print(_taus_against_curves(rows, args.curves, args.shots, args.out))
    return 0


def _taus_against_curves(rows, curves, shots, out):
    """The Markdown of :func:`~speechbrain_xfer.curves.rank_check.taus_against_curves`, also written to
    ``<out>/rank_vs_curves.md``."""
    from speechbrain_xfer.curves.rank_check import taus_against_curves

    if not os.path.isfile(curves):
        raise SystemExit(f"sbx rank: --curves {curves}: no such file (the curves.csv of an sbx curve grid)")
    with open(curves, newline="") as f:
        curve_rows = list(csv.DictReader(f))
    if curve_rows and "source" not in curve_rows[0]:
        raise SystemExit(f"sbx rank: {curves} has no source column; rerun its sbx curve command to rewrite it")
    results = taus_against_curves(rows, curve_rows, shots)
    lines = [f"LogME against the mean test accuracy at {shots} shots of {curves}:", ""]
    lines += ["| method | candidates (LogME; accuracy %) | Kendall's tau |", "|---|---|---|"]
    for result in results:
        points = "; ".join(f"{c} ({score:.4f}; {100 * acc:.1f})" for c, score, acc in result["candidates"])
        tau = "n/a (2 candidates)" if result["tau"] is None else f"{result['tau']:.2f}"
        lines.append(f"| {result['method']} | {points} | {tau} |")
    if not results:
        lines.append("| (no method of the grid started from two of these candidates) | | |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "rank_vs_curves.md"), "w") as f:
        f.write(text)
    return text


def run_check(args):
    """Ranks candidates, fine-tunes each of them and reports Kendall's tau and the time ratio."""
    from speechbrain_xfer.curves.rank_check import parse_candidates, run_rank_check

    tasks = [task.strip() for task in args.task.split(",")]
    unknown = [task for task in tasks if task not in ("kws", "intent", "emotion")]
    if unknown:
        raise SystemExit(f"sbx rank-check: --task {','.join(unknown)}: use kws, intent, emotion")
    try:
        candidates = parse_candidates(args.candidates)
    except ValueError as err:
        raise SystemExit(f"sbx rank-check: {err}") from None
    chosen_seeds = seeds(args.seeds)
    _, _, failed = run_rank_check(
        candidates,
        tasks,
        args.data,
        recipes_root(args),
        args.out,
        shots=args.shots,
        seeds=chosen_seeds,
        jobs=args.jobs,
        recipe_args=shlex.split(args.recipe_args),
        launcher=launcher(args, args.out),
    )
    return report_failures(failed)


def add_parsers(commands):
    rank = commands.add_parser(
        "rank",
        help="rank candidate encoders (and layers) for a target task from frozen features, best first",
        epilog=example(
            "sbx rank results/FSDD/manifests/train_k10.csv results/demo/pretrain/words/encoder results/ge2e \\\n"
            "    --target word --curves results/FSDD/grid3/curves.csv --shots 10"
        ),
    )
    rank.add_argument("manifest", help="the target task's training manifest (CSV), e.g. a k-shot subset")
    rank.add_argument(
        "candidates", nargs="+", help="encoder folders (hub format, sbx export or GE2E pretrained_source) or hub ids"
    )
    rank.add_argument("--target", required=True, help="the manifest's label column, e.g. word, intent, emotion")
    rank.add_argument(
        "--layers", choices=("last", "all"), default="last", help="score every hidden state of hub-format encoders"
    )
    rank.add_argument("--out", default="results/rank", help="folder of rank.csv (default: results/rank)")
    rank.add_argument("--cache", default=None, help="feature cache folder (default: <out>/cache)")
    rank.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rank.add_argument(
        "--curves",
        default=None,
        help="the curves.csv of an sbx curve grid that fine-tuned from these candidates (its source column): "
        "also print Kendall's tau of LogME against its accuracies, per method",
    )
    rank.add_argument("--shots", type=int, default=10, help="with --curves: the shot count compared (default: 10)")
    rank.set_defaults(func=run_rank)

    check = commands.add_parser(
        "rank-check",
        help="rank candidate encoders, fine-tune each, and report how well the ranking predicted it",
        epilog=example(
            "sbx rank-check ctc=results/demo/pretrain/encoder words=results/demo/pretrain/words/encoder \\\n"
            "    --task kws --seeds 3 --out results/rank_check"
        ),
    )
    check.add_argument(
        "candidates",
        nargs="+",
        help="NAME=FOLDER (an sbx export), or NAME=FOLDER@0,2,4 or NAME=FOLDER@all (hidden states of a hub-format "
        "encoder)",
    )
    check.add_argument("--task", default="kws,intent,emotion", help="comma-separated (default: kws,intent,emotion)")
    check.add_argument("--data", dest="data", new="--data-folder", action=DeprecatedOption, default=argparse.SUPPRESS)
    check.add_argument("--data-folder", dest="data", default="results/demo/data", help="SynthSpeech corpus root")
    check.add_argument("--shots", type=int, default=10, help="examples per class of the training set (default: 10)")
    check.add_argument("--seeds", default="3", help=f"fine-tuning seeds per candidate: {SEEDS_HELP} (default: 3)")
    check.add_argument(
        "--jobs", type=int, default=2, help="local launcher: processes at a time, runs side by side (default: 2)"
    )
    add_launcher_options(check)
    check.add_argument("--out", default="results/rank_check", help="output folder (default: results/rank_check)")
    check.add_argument("--recipes", default=None, help="recipes/SynthSpeech folder (default: the repository's)")
    check.add_argument("--recipe-args", default="", help="extra arguments for every run, written with '='")
    check.set_defaults(func=run_check)
