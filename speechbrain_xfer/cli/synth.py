"""``sbx synth``: synthesizes SynthSpeech task corpora with espeak-ng."""

import json
import logging
import os
import time

from speechbrain_xfer.cli.common import example

logger = logging.getLogger("speechbrain_xfer")


def add_synth_options(parser):
    parser.add_argument("--seed", type=int, default=1234, help="corpus seed (default: 1234)")
    parser.add_argument("--speakers", type=int, default=60, help="synthetic speakers (default: 60)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the training utterances per speaker (default: 1.0)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes at a time: synthesis workers (default: all cores)",
    )


def synth_options(args):
    from speechbrain_xfer.synthspeech.synth import SynthOptions

    return SynthOptions(seed=args.seed, num_speakers=args.speakers, scale=args.scale)


def run(args):
    """Synthesizes SynthSpeech task corpora."""
    from speechbrain_xfer.synthspeech.synth import TASKS, synthesize_task

    if args.task == "words":
        logger.warning(
            "sbx synth --task words is now --task kws, as sbx curve names it; 'words' works until the next release"
        )
    # The keyword task's corpus folder is words/ (its source and target words).
    tasks = TASKS if args.task == "all" else ("words" if args.task in ("kws", "words") else args.task,)
    options = synth_options(args)
    for task in tasks:
        start = time.perf_counter()
        reports = synthesize_task(task, args.out, options, jobs=args.jobs)
        for folder, report in reports.items():
            print(f"{folder}: {json.dumps(report['counts'])}, {report['hours']} h, {len(report['failures'])} failed")
        logger.info("%s done in %.1f s", task, time.perf_counter() - start)
    return 0


def add_parser(commands):
    parser = commands.add_parser(
        "synth",
        help="synthesize a SynthSpeech corpus with espeak-ng",
        epilog=example("sbx synth --task kws --out results/corpus --speakers 20"),
    )
    parser.add_argument(
        "--task",
        choices=("kws", "intent", "emotion", "asr", "all", "words"),
        default="all",
        metavar="{kws,intent,emotion,asr,all}",
        help="the task's corpus, named as sbx curve names it (default: all)",
    )
    parser.add_argument("--out", required=True, help="corpus root folder")
    add_synth_options(parser)
    parser.set_defaults(func=run)
