"""``sbx curve``, ``sbx tune`` and ``sbx budget``: grids of recipe runs, their report, and the label budget."""

import argparse
import csv
import logging
import os
import shlex
import time

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


def _grid_runs(args, command, out):
    """``(methods, runs)`` of a ``curve`` or ``tune`` grid in ``out``, checked before any training."""
    from speechbrain_xfer.curves.grid import (
        GridInputError,
        check_inputs,
        grid,
        parse_shots,
        prepare_subsets,
        recipe_methods,
        run_source,
    )

    try:
        methods = recipe_methods([m.strip() for m in args.methods.split(",")], args.encoder)
        shots = parse_shots(args.shots)
        targets = _targets(args, command, methods, shots, out)
        runs = grid(targets, methods, shots, seeds(args.seeds), out)
        prepare_subsets(runs)
        check_inputs(runs)
    except (GridInputError, ValueError) as err:
        raise SystemExit(f"sbx {command}: {err}") from None
    # A ConvEncoder or GE2E source is a folder with encoder.ckpt; a hub-format one has config.json.
    checked, sources, task_sources = set(), _pretrained(args), _task_sources(args)
    for run in runs:
        folder = run_source(run, sources, task_sources)
        if folder is None or (folder, run.encoder) in checked:
            continue
        checked.add((folder, run.encoder))
        wanted = "config.json" if run.encoder == "hf" else "encoder.ckpt"
        option = "--pretrained-source-kws" if folder == args.pretrained_kws else "--pretrained-source"
        if run.encoder == "hf" and not os.path.exists(folder) and folder.count("/") == 1:
            continue  # a hub id: HFEncoder finds it (or says where it looked) as the first run starts
        if not os.path.isfile(os.path.join(folder, wanted)):
            raise SystemExit(
                f"sbx {command}: no pretrained encoder at {folder} ({wanted}) for {run.method}; run the "
                f"pretraining recipes first (sbx demo does), or pass {option}"
                + ("" if run.encoder == "conv" else f" {run.encoder}=<folder>")
            )
    return methods, runs


def _targets(args, command, methods, shots, out):
    """The grid's targets: ``--recipe`` on ``--data-folder``, or SynthSpeech tasks (``--task``) in that corpus."""
    from speechbrain_xfer.curves.grid import TASKS, data_target, synthspeech_target

    if args.recipe:
        if args.task is not None:
            raise SystemExit(f"sbx {command}: give --task (a SynthSpeech task) or --recipe (any recipe), not both")
        return [data_target(args.recipe, args.data, methods, shots, out, name=args.name)]
    tasks = [t.strip() for t in (args.task or "kws").split(",")]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"sbx {command}: unknown task(s) {unknown}; choose from {sorted(TASKS)}")
    if not os.path.isdir(args.data):
        raise SystemExit(
            f"sbx {command}: --data-folder {args.data}: no such folder (a SynthSpeech corpus: sbx synth or sbx demo "
            f"makes one; for a folder with train.csv, valid.csv and test.csv, pass --recipe)"
        )
    return [synthspeech_target(t, recipes_root(args), args.data, shots, out) for t in tasks]


def _pretrained(args):
    """The pretrained sources of the transfer runs, ``{encoder: folder}`` (``""``: the others):
    ``--pretrained-source``, else the demo's for the encoder."""
    from speechbrain_xfer.curves.grid import ENCODERS

    default = "results/demo/pretrain/hf/encoder" if args.encoder == "hf" else "results/demo/pretrain/encoder"
    sources = {"": default}
    for item in args.pretrained or ():
        encoder, named, folder = item.partition("=")
        if not named or os.sep in encoder:  # a plain folder (whose name may hold a '=')
            encoder, folder = "", item
        elif encoder not in ENCODERS:
            raise SystemExit(
                f"sbx {args.command}: --pretrained-source {item}: {encoder!r} is not one of {', '.join(ENCODERS)}"
            )
        sources[encoder] = folder
    return sources


def _task_sources(args):
    # The source-words stage is a ConvEncoder's: the hub-format encoder's keyword runs start from its CTC stage.
    return {"kws": args.pretrained_kws} if args.encoder == "conv" else {}


def _run(args, runs, out, extra=(), on=None, wait=True):
    """Runs a grid's pending runs here, or submits them to the launcher ``on`` (waiting for them unless
    ``wait`` is False); returns the failed runs."""
    from speechbrain_xfer.curves.grid import cache_folder, run_grid

    return run_grid(
        runs,
        None,
        None,
        _pretrained(args),
        jobs=args.jobs,
        threads=args.threads,
        extra_overrides=[*shlex.split(args.recipe_args), *extra],
        task_sources=_task_sources(args),
        cache=cache_folder(out),
        launcher=on,
        wait=wait,
    )


def run_curve(args):
    """Runs a grid of recipe runs and writes curves.csv, curves.md and curves.png."""
    from speechbrain_xfer.curves.budget import section
    from speechbrain_xfer.curves.forgetting import report_forgetting
    from speechbrain_xfer.curves.report import read_summaries, write_report

    methods, runs = _grid_runs(args, "curve", args.out)
    start = time.perf_counter()
    failed = _run(args, runs, args.out, on=launcher(args, args.out))
    summaries = read_summaries(runs)
    rows = write_report(summaries, args.out, methods_order=methods)
    if rows:  # curves.md ends with the clips per class each method needs for --target
        budget = section(rows, args.target)
        with open(os.path.join(args.out, "curves.md"), "a") as f:
            f.write("\n" + budget)
        print(budget)
    if args.encoder == "conv" and not args.recipe:  # forgetting decodes the ConvEncoder source's own test set
        report_forgetting(runs, summaries, _pretrained(args)[""], args.data, args.out)
    logger.info(
        "%d runs reported in %s (curves.csv, curves.md, curves.png) after %.0f s",
        len(rows),
        args.out,
        time.perf_counter() - start,
    )
    return report_failures(failed)


def run_budget(args):
    """Prints the clips per class each method of finished grids needs for a target accuracy."""
    from speechbrain_xfer.curves.budget import holdout_markdown, holdout_rows, section

    rows = []
    for path in args.curves:
        if not os.path.isfile(path):
            raise SystemExit(f"sbx budget: no such file: {path} (the curves.csv of an sbx curve grid)")
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    print(section(rows, args.target))
    if args.holdout:
        print("### The fit checked: the largest shot count predicted from the smaller ones\n")
        print(holdout_markdown(holdout_rows(rows)))
    return 0


def run_tune(args):
    """Runs the grid once per learning rate and writes tuning.csv and tuning.md (chosen on validation)."""
    from speechbrain_xfer.curves.report import read_summaries
    from speechbrain_xfer.curves.tuning import lr_folder, tuning_rows, write_tuning_report

    lrs = [lr.strip() for lr in args.lrs.split(",")]
    grids = {lr: _grid_runs(args, "tune", lr_folder(args.out, lr))[1] for lr in lrs}
    failed, on = [], launcher(args, args.out)
    for lr, runs in grids.items():
        logger.info("learning rate %s", lr)
        # On SLURM, every learning rate's jobs are queued before waiting for any.
        failed += _run(args, runs, lr_folder(args.out, lr), extra=["--lr", lr], on=on, wait=on is None)
    if on is not None:
        failed += on.wait()
    rows = tuning_rows({lr: read_summaries(runs) for lr, runs in grids.items()})
    chosen = write_tuning_report(rows, lrs, args.out)
    for (task, method, shots), lr in sorted(chosen.items(), key=str):
        logger.info("%s %s %s shots: lr %s", task, method, shots, lr)
    return report_failures(failed)


def _add_target_option(parser):
    parser.add_argument(
        "--target",
        type=float,
        default=90.0,
        help="accuracy (%%) to estimate the labels needed for, from a curve fitted to each method's points "
        "(an error rate's target is 100 minus this) (default: 90)",
    )


def _add_grid_options(parser, out, shots):
    parser.add_argument(
        "--task",
        default=None,
        help="SynthSpeech tasks in the corpus --data-folder, comma-separated: kws, intent, emotion, asr (default: kws)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        help="a recipe folder (train.py, hparams/<method>.yaml) to run on --data-folder, a folder with train.csv, "
        "valid.csv and test.csv, instead of a SynthSpeech --task",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="with --recipe: the task's name in the report (default: the --data-folder folder's)",
    )
    parser.add_argument(
        "--shots", default=shots, help=f"examples per class (asr: training sentences), or 'all' (default: {shots})"
    )
    parser.add_argument(
        "--methods",
        default="scratch,finetune,l2sp,frozen",
        help="recipe YAML names (default: scratch,finetune,l2sp,frozen)",
    )
    parser.add_argument("--seeds", default="1", help=f"{SEEDS_HELP} (default: 1)")
    parser.add_argument("--data", dest="data", new="--data-folder", action=DeprecatedOption, default=argparse.SUPPRESS)
    parser.add_argument(
        "--data-folder",
        dest="data",
        default="results/demo/data",
        help="SynthSpeech corpus root; with --recipe, the folder with train.csv, valid.csv and test.csv "
        "(default: results/demo/data)",
    )
    parser.add_argument(
        "--encoder",
        choices=("conv", "hf"),
        default="conv",
        help="conv: the recipes' ConvEncoder (hparams/<method>.yaml); hf: a hub-format transformer encoder "
        "through HFEncoder (hparams/hf_<method>.yaml) (default: conv)",
    )
    old = dict(action=DeprecatedOption, default=argparse.SUPPRESS)
    parser.add_argument("--pretrained", dest="pretrained", new="--pretrained-source", append=True, **old)
    parser.add_argument(
        "--pretrained-source",
        dest="pretrained",
        action="append",
        metavar="[ENCODER=]FOLDER",
        help="pretrained encoder folder or, with --encoder hf, hub id (default: the demo's CTC pretraining, "
        "results/demo/pretrain/encoder, or results/demo/pretrain/hf/encoder with --encoder hf); repeat it "
        "with hf=... or ge2e=... for the hf_* or ge2e_* methods of a grid that mixes encoders",
    )
    parser.add_argument("--pretrained-kws", dest="pretrained_kws", new="--pretrained-source-kws", **old)
    parser.add_argument(
        "--pretrained-source-kws",
        dest="pretrained_kws",
        default="results/demo/pretrain/words/encoder",
        help="pretrained encoder folder of the kws transfer runs (default: the demo's encoder "
        "fine-tuned on the source words)",
    )
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument(
        "--jobs", type=int, default=2, help="local launcher: processes at a time, runs side by side (default: 2)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="local launcher: torch threads of each run (default: the cores divided by --jobs)",
    )
    add_launcher_options(parser)
    parser.add_argument(
        "--recipes",
        default=None,
        help="recipes/SynthSpeech folder (default: the repository's, else the installed package's)",
    )
    parser.add_argument(
        "--recipe-args",
        default="",
        help="extra arguments for every run, written with '=': --recipe-args='--device=cuda:0 --number_of_epochs=5'",
    )


def add_parsers(commands):
    curve = commands.add_parser(
        "curve",
        help="learning curves: tasks x methods x shots x seeds",
        epilog=example(
            "sbx curve --recipe recipes/FSDD/KWS --data-folder results/FSDD/manifests --shots 1,10 --seeds 3 \\\n"
            "    --methods scratch,finetune,ge2e_frozen --pretrained-source results/demo/pretrain/words/encoder \\\n"
            "    --pretrained-source ge2e=results/ge2e --out results/fsdd_curves"
        ),
    )
    _add_grid_options(curve, out="results/curves", shots="1,3,10")
    _add_target_option(curve)
    curve.set_defaults(func=run_curve)

    budget = commands.add_parser(
        "budget",
        help="the clips per class each method of finished grids needs for a target accuracy",
        epilog=example("sbx budget docs/results/grid4_curves.csv --target 90 --holdout"),
    )
    budget.add_argument("curves", nargs="+", help="curves.csv files of sbx curve grids")
    _add_target_option(budget)
    budget.add_argument(
        "--holdout", action="store_true", help="also predict each curve's largest shot count from the smaller ones"
    )
    budget.set_defaults(func=run_budget)

    tune = commands.add_parser(
        "tune",
        help="the same learning rates for every method, chosen on validation",
        epilog=example("sbx tune --task kws --shots 10 --lrs 0.001,0.003 --out results/tuning"),
    )
    _add_grid_options(tune, out="results/tuning", shots="10")
    tune.add_argument("--lrs", default="0.001,0.003", help="head learning rates to try (default: 0.001,0.003)")
    tune.set_defaults(func=run_tune)
