"""The ``sbx`` command line: one module per subcommand (``sbx <command> --help`` for each)."""

import argparse
import logging
import sys

from speechbrain_xfer import __version__
from speechbrain_xfer.cli import demo, export, grid, inference, push, rank, synth


def build_parser():
    parser = argparse.ArgumentParser(prog="sbx", description="Transfer learning for speech with SpeechBrain.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Every command's --help ends with a runnable example, printed as written.
    formatter = argparse.RawDescriptionHelpFormatter
    add_parser = commands.add_parser
    commands.add_parser = lambda *args, **kwargs: add_parser(*args, formatter_class=formatter, **kwargs)
    synth.add_parser(commands)
    grid.add_parsers(commands)
    rank.add_parsers(commands)
    demo.add_parser(commands)
    export.add_parser(commands)
    push.add_parser(commands)
    inference.add_parsers(commands)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
