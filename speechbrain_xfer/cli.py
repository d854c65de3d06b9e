"""The ``sbx`` command line: ``sbx <command> --help`` for each command."""

import argparse
import json
import logging
import os
import sys
import time

logger = logging.getLogger("speechbrain_xfer")


def _add_synth_options(parser):
    parser.add_argument("--seed", type=int, default=1234, help="corpus seed (default: 1234)")
    parser.add_argument("--speakers", type=int, default=60, help="synthetic speakers (default: 60)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies the training utterances per speaker (default: 1.0)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores)")


def _synth_options(args):
    from speechbrain_xfer.data.synth import SynthOptions

    return SynthOptions(seed=args.seed, num_speakers=args.speakers, scale=args.scale)


def cmd_synth(args):
    """Synthesizes SynthSpeech task corpora."""
    from speechbrain_xfer.data.synth import TASKS, synthesize_task

    tasks = TASKS if args.task == "all" else (args.task,)
    options = _synth_options(args)
    for task in tasks:
        start = time.perf_counter()
        reports = synthesize_task(task, args.out, options, jobs=args.jobs)
        for folder, report in reports.items():
            print(f"{folder}: {json.dumps(report['counts'])}, {report['hours']} h, "
                  f"{len(report['failures'])} failed")  # fmt: skip
        logger.info("%s done in %.1f s", task, time.perf_counter() - start)
    return 0


def cmd_demo(args):
    """Runs the offline demo: builds the SynthSpeech corpus for every task."""
    args.task = "all"
    args.out = os.path.join(args.out, "data")
    return cmd_synth(args)


def build_parser():
    from speechbrain_xfer.data.synth import TASKS

    parser = argparse.ArgumentParser(prog="sbx", description="Transfer learning for speech with SpeechBrain.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="synthesize a SynthSpeech corpus with espeak-ng")
    synth.add_argument("--task", choices=(*TASKS, "all"), default="all")
    synth.add_argument("--out", required=True, help="corpus root folder")
    _add_synth_options(synth)
    synth.set_defaults(func=cmd_synth)

    demo = commands.add_parser("demo", help="run the offline SynthSpeech demo")
    demo.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    _add_synth_options(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
