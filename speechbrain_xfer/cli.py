"""The ``sbx`` command line: ``sbx <command> --help`` for each command."""

import argparse
import csv
import json
import logging
import os
import shlex
import sys
import time

from speechbrain_xfer import __version__

logger = logging.getLogger("speechbrain_xfer")


def _add_synth_options(parser):
    parser.add_argument("--seed", type=int, default=1234, help="corpus seed (default: 1234)")
    parser.add_argument("--speakers", type=int, default=60, help="synthetic speakers (default: 60)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the training utterances per speaker (default: 1.0)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")


def _synth_options(args):
    from speechbrain_xfer.synthspeech.synth import SynthOptions

    return SynthOptions(seed=args.seed, num_speakers=args.speakers, scale=args.scale)


def cmd_synth(args):
    """Synthesizes SynthSpeech task corpora."""
    from speechbrain_xfer.synthspeech.synth import TASKS, synthesize_task

    tasks = TASKS if args.task == "all" else (args.task,)
    options = _synth_options(args)
    for task in tasks:
        start = time.perf_counter()
        reports = synthesize_task(task, args.out, options, jobs=args.jobs)
        for folder, report in reports.items():
            print(f"{folder}: {json.dumps(report['counts'])}, {report['hours']} h, {len(report['failures'])} failed")
        logger.info("%s done in %.1f s", task, time.perf_counter() - start)
    return 0


def _recipes_root(args):
    """The SynthSpeech recipes folder: ``--recipes``, else the repository's, else the installed package's."""
    if args.recipes:
        if not os.path.isdir(args.recipes):
            hint = "pass the recipes/SynthSpeech folder of a speechbrain_xfer checkout"
            raise SystemExit(f"sbx {args.command}: --recipes {args.recipes} is not a folder; {hint}")
        return args.recipes
    package = os.path.dirname(os.path.abspath(__file__))
    # An editable install (the README's) runs from the repository, where recipes/ lives; a wheel carries the
    # SynthSpeech recipes inside the package (pyproject.toml maps recipes/ to speechbrain_xfer.recipes).
    for root in (os.path.join(os.path.dirname(package), "recipes"), os.path.join(package, "recipes")):
        folder = os.path.join(root, "SynthSpeech")
        if os.path.isdir(folder):
            return folder
    where = f"neither in a repository checkout nor in the installed package ({package})"
    hint = "pass --recipes <checkout>/recipes/SynthSpeech"
    raise SystemExit(f"sbx {args.command}: the SynthSpeech recipes are {where}; {hint}")


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
        runs = grid(targets, methods, shots, _seeds(args.seeds), out)
        prepare_subsets(runs)
        check_inputs(runs)
    except (GridInputError, ValueError) as err:
        raise SystemExit(f"sbx {command}: {err}") from None
    # A ConvEncoder or GE2E source is a folder with encoder.ckpt; a hub-format one has config.json.
    checked = set()
    for run in runs:
        folder = run_source(run, _pretrained(args), _task_sources(args))
        if folder is None or (folder, run.encoder) in checked:
            continue
        checked.add((folder, run.encoder))
        wanted = "config.json" if run.encoder == "hf" else "encoder.ckpt"
        option = "--pretrained-kws" if folder == args.pretrained_kws else "--pretrained"
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
    """The grid's targets: ``--recipe`` on ``--data``, or SynthSpeech tasks (``--task``) in the corpus ``--data``."""
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
            f"sbx {command}: --data {args.data}: no such folder (a SynthSpeech corpus: sbx synth or sbx demo "
            f"makes one; for a folder with train.csv, valid.csv and test.csv, pass --recipe)"
        )
    return [synthspeech_target(t, _recipes_root(args), args.data, shots, out) for t in tasks]


def _seeds(count):
    return list(range(1, count + 1))


def _pretrained(args):
    """The pretrained sources of the transfer runs, ``{encoder: folder}`` (``""``: the others): ``--pretrained``,
    else the demo's for the encoder."""
    from speechbrain_xfer.curves.grid import ENCODERS

    default = "results/demo/pretrain/hf/encoder" if args.encoder == "hf" else "results/demo/pretrain/encoder"
    sources = {"": default}
    for item in args.pretrained or ():
        encoder, named, folder = item.partition("=")
        if not named or os.sep in encoder:  # a plain folder (whose name may hold a '=')
            encoder, folder = "", item
        elif encoder not in ENCODERS:
            raise SystemExit(
                f"sbx {args.command}: --pretrained {item}: {encoder!r} is not one of {', '.join(ENCODERS)}"
            )
        sources[encoder] = folder
    return sources


def _task_sources(args):
    # The source-words stage is a ConvEncoder's: the hub-format encoder's keyword runs start from its CTC stage.
    return {"kws": args.pretrained_kws} if args.encoder == "conv" else {}


def _run(args, runs, out, extra=()):
    from speechbrain_xfer.curves.grid import cache_folder, run_grid

    return run_grid(
        runs,
        None,
        None,
        _pretrained(args),
        jobs=args.jobs,
        extra_overrides=[*shlex.split(args.recipe_args), *extra],
        task_sources=_task_sources(args),
        cache=cache_folder(out),
    )


def _report_failures(failed):
    if failed:
        logger.error("%d runs failed; rerun the same command to retry only them", len(failed))
        return 1
    return 0


def cmd_curve(args):
    """Runs a grid of recipe runs and writes curves.csv, curves.md and curves.png."""
    from speechbrain_xfer.curves.budget import section
    from speechbrain_xfer.curves.forgetting import report_forgetting
    from speechbrain_xfer.curves.report import read_summaries, write_report

    methods, runs = _grid_runs(args, "curve", args.out)
    start = time.perf_counter()
    failed = _run(args, runs, args.out)
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
    return _report_failures(failed)


def cmd_budget(args):
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


def cmd_tune(args):
    """Runs the grid once per learning rate and writes tuning.csv and tuning.md (chosen on validation)."""
    from speechbrain_xfer.curves.report import read_summaries
    from speechbrain_xfer.curves.tuning import lr_folder, tuning_rows, write_tuning_report

    lrs = [lr.strip() for lr in args.lrs.split(",")]
    grids = {lr: _grid_runs(args, "tune", lr_folder(args.out, lr))[1] for lr in lrs}
    failed = []
    for lr, runs in grids.items():
        logger.info("learning rate %s", lr)
        failed += _run(args, runs, lr_folder(args.out, lr), extra=["--lr", lr])
    rows = tuning_rows({lr: read_summaries(runs) for lr, runs in grids.items()})
    chosen = write_tuning_report(rows, lrs, args.out)
    for (task, method, shots), lr in sorted(chosen.items(), key=str):
        logger.info("%s %s %s shots: lr %s", task, method, shots, lr)
    return _report_failures(failed)


def cmd_demo(args):
    """Runs the offline demo: corpus, source pretraining, then learning curves."""
    from speechbrain_xfer.curves.demo import run_demo

    return run_demo(args.out, _synth_options(args), _recipes_root(args), jobs=args.jobs, encoder=args.encoder)


def cmd_export(args):
    """Exports a finished recipe run to a folder SpeechBrain's inference classes load."""
    from speechbrain_xfer.hub.export import export_experiment
    from speechbrain_xfer.hub.loading import ExportError

    try:
        exported = export_experiment(
            args.experiment_dir,
            args.out_dir,
            repo_id=args.repo_id,
            language=args.language,
            license=args.license,
            dataset=args.dataset,
            example=args.example,
            overwrite=args.overwrite,
        )
    except ExportError as err:
        raise SystemExit(f"sbx export: {err}") from None
    print(
        f"{exported.folder}: loads with {exported.interface} (checked on a test utterance: max |log-prob "
        f"difference| {exported.max_abs_diff:.2g} from the trained run)"
    )
    return 0


def cmd_push(args):
    """Uploads an exported folder to the Hugging Face Hub."""
    from speechbrain_xfer.hub.push import PushError, push_export

    try:
        url = push_export(args.folder, args.repo_id, private=args.private, token=args.token)
    except PushError as err:
        raise SystemExit(f"sbx push: {err}") from None
    print(url)
    return 0


def _run_on_files(args, command):
    import tempfile

    from speechbrain_xfer.hub.inference import classify_files, format_table, transcribe_files
    from speechbrain_xfer.hub.loading import ExportError, load_export

    with tempfile.TemporaryDirectory() as savedir:
        try:
            model = load_export(
                args.model,
                savedir=savedir,
                trust_remote_code=args.trust_remote_code,
                run_opts={"device": args.device},
            )
        except ExportError as err:
            raise SystemExit(f"sbx {command}: {err}") from None
        if command == "classify":
            rows, columns = classify_files(model, args.files), ["file", "label", "score"]
        else:
            rows, columns = transcribe_files(model, args.files), ["file", "text"]
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, columns))
    failed = sum("error" in row for row in rows)
    if failed:
        logger.error(
            "%d of %d files could not be %s (see above)",
            failed,
            len(rows),
            "classified" if command == "classify" else "transcribed",
        )
    return 1 if failed else 0


def cmd_classify(args):
    """Classifies audio files with an exported classifier."""
    return _run_on_files(args, "classify")


def cmd_transcribe(args):
    """Transcribes audio files with an exported CTC model."""
    return _run_on_files(args, "transcribe")


def cmd_rank(args):
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


def cmd_rank_check(args):
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
    seeds = _seeds(args.seeds)
    _, _, failed = run_rank_check(
        candidates,
        tasks,
        args.data,
        _recipes_root(args),
        args.out,
        shots=args.shots,
        seeds=seeds,
        jobs=args.jobs,
        recipe_args=shlex.split(args.recipe_args),
    )
    return _report_failures(failed)


def _add_inference_parser(commands, name, help_text, func):
    parser = commands.add_parser(name, help=help_text)
    parser.add_argument("model", help="an `sbx export` folder or its hub id (user/name)")
    parser.add_argument("files", nargs="+", help="audio files (any sample rate and channel count)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load a model whose hyperparams.yaml calls code outside torch, speechbrain and speechbrain_xfer "
        "(it runs that code)",
    )
    parser.set_defaults(func=func)


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
        help="SynthSpeech tasks in the corpus --data, comma-separated: kws, intent, emotion, asr (default: kws)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        help="a recipe folder (train.py, hparams/<method>.yaml) to run on --data, a folder with train.csv, "
        "valid.csv and test.csv, instead of a SynthSpeech --task",
    )
    parser.add_argument(
        "--name", default=None, help="with --recipe: the task's name in the report (default: the --data folder's)"
    )
    parser.add_argument(
        "--shots", default=shots, help=f"examples per class (asr: training sentences), or 'all' (default: {shots})"
    )
    parser.add_argument(
        "--methods",
        default="scratch,finetune,l2sp,frozen",
        help="recipe YAML names (default: scratch,finetune,l2sp,frozen)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds 1..N (default: 1)")
    parser.add_argument(
        "--data",
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
    parser.add_argument(
        "--pretrained",
        action="append",
        metavar="[ENCODER=]FOLDER",
        help="pretrained encoder folder or, with --encoder hf, hub id (default: the demo's CTC pretraining, "
        "results/demo/pretrain/encoder, or results/demo/pretrain/hf/encoder with --encoder hf); repeat it "
        "with hf=... or ge2e=... for the hf_* or ge2e_* methods of a grid that mixes encoders",
    )
    parser.add_argument(
        "--pretrained-kws",
        default="results/demo/pretrain/words/encoder",
        help="pretrained encoder folder of the kws transfer runs (default: the demo's encoder "
        "fine-tuned on the source words)",
    )
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (default: 2)")
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


def build_parser():
    from speechbrain_xfer.synthspeech.synth import TASKS

    parser = argparse.ArgumentParser(prog="sbx", description="Transfer learning for speech with SpeechBrain.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="synthesize a SynthSpeech corpus with espeak-ng")
    synth.add_argument("--task", choices=(*TASKS, "all"), default="all")
    synth.add_argument("--out", required=True, help="corpus root folder")
    _add_synth_options(synth)
    synth.set_defaults(func=cmd_synth)

    curve = commands.add_parser("curve", help="learning curves: tasks x methods x shots x seeds")
    _add_grid_options(curve, out="results/curves", shots="1,3,10")
    _add_target_option(curve)
    curve.set_defaults(func=cmd_curve)

    budget = commands.add_parser(
        "budget", help="the clips per class each method of finished grids needs for a target accuracy"
    )
    budget.add_argument("curves", nargs="+", help="curves.csv files of sbx curve grids")
    _add_target_option(budget)
    budget.add_argument(
        "--holdout", action="store_true", help="also predict each curve's largest shot count from the smaller ones"
    )
    budget.set_defaults(func=cmd_budget)

    tune = commands.add_parser("tune", help="the same learning rates for every method, chosen on validation")
    _add_grid_options(tune, out="results/tuning", shots="10")
    tune.add_argument("--lrs", default="0.001,0.003", help="head learning rates to try (default: 0.001,0.003)")
    tune.set_defaults(func=cmd_tune)

    rank = commands.add_parser(
        "rank", help="rank candidate encoders (and layers) for a target task from frozen features, best first"
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
    rank.set_defaults(func=cmd_rank)

    check = commands.add_parser(
        "rank-check", help="rank candidate encoders, fine-tune each, and report how well the ranking predicted it"
    )
    check.add_argument(
        "candidates",
        nargs="+",
        help="NAME=FOLDER (an sbx export), or NAME=FOLDER@0,2,4 or NAME=FOLDER@all (hidden states of a hub-format "
        "encoder)",
    )
    check.add_argument("--task", default="kws,intent,emotion", help="comma-separated (default: kws,intent,emotion)")
    check.add_argument("--data", default="results/demo/data", help="SynthSpeech corpus root")
    check.add_argument("--shots", type=int, default=10, help="examples per class of the training set (default: 10)")
    check.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per candidate (default: 3)")
    check.add_argument("--jobs", type=int, default=2, help="runs at a time (default: 2)")
    check.add_argument("--out", default="results/rank_check", help="output folder (default: results/rank_check)")
    check.add_argument("--recipes", default=None, help="recipes/SynthSpeech folder (default: the repository's)")
    check.add_argument("--recipe-args", default="", help="extra arguments for every run, written with '='")
    check.set_defaults(func=cmd_rank_check)

    demo = commands.add_parser("demo", help="run the offline SynthSpeech demo")
    demo.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    demo.add_argument(
        "--recipes",
        default=None,
        help="recipes/SynthSpeech folder (default: the repository's, else the installed package's)",
    )
    demo.add_argument(
        "--encoder",
        choices=("conv", "hf"),
        default="conv",
        help="conv: the ConvEncoder demo; hf: the hub-format transformer encoder's source stage and hf_* recipes "
        "(report in <out>/hf; corpus and CTC stage shared) (default: conv)",
    )
    _add_synth_options(demo)
    demo.set_defaults(func=cmd_demo)

    export = commands.add_parser("export", help="export a finished recipe run for SpeechBrain's inference classes")
    export.add_argument("experiment_dir", help="the run's output_folder (hyperparams.yaml, summary.json, save/)")
    export.add_argument("out_dir", help="the folder to write")
    export.add_argument("--repo-id", default=None, help="hub id the model card's usage code loads from (user/name)")
    export.add_argument("--language", default="en", help="model card language (default: en)")
    export.add_argument("--license", default="apache-2.0", help="model card license (default: apache-2.0)")
    export.add_argument("--dataset", default=None, help="model card dataset (default: the recipe's)")
    export.add_argument(
        "--example",
        default=None,
        help="audio file shipped as example.wav (default: a test utterance, SynthSpeech only)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace out_dir if it exists")
    export.set_defaults(func=cmd_export)

    push = commands.add_parser("push", help="upload an exported folder to the Hugging Face Hub")
    push.add_argument("folder", help="an `sbx export` folder")
    push.add_argument("repo_id", help="user/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--token", default=None, help="hub token (default: HF_TOKEN, then the cached login)")
    push.set_defaults(func=cmd_push)

    _add_inference_parser(commands, "classify", "classify audio files with an exported model", cmd_classify)
    _add_inference_parser(commands, "transcribe", "transcribe audio files with an exported CTC model", cmd_transcribe)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
