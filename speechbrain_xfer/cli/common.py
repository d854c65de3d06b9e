"""What several ``sbx`` commands share: the SynthSpeech recipes folder, seeds, failures."""

import argparse
import logging
import os


def recipes_root(args):
    """The SynthSpeech recipes folder: ``--recipes``, else the repository's, else the installed package's."""
    if args.recipes:
        if not os.path.isdir(args.recipes):
            hint = "pass the recipes/SynthSpeech folder of a speechbrain_xfer checkout"
            raise SystemExit(f"sbx {args.command}: --recipes {args.recipes} is not a folder; {hint}")
        return args.recipes
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # An editable install (the README's) runs from the repository, where recipes/ lives; a wheel carries the
    # SynthSpeech recipes inside the package (pyproject.toml maps recipes/ to speechbrain_xfer.recipes).
    for root in (os.path.join(os.path.dirname(package), "recipes"), os.path.join(package, "recipes")):
        folder = os.path.join(root, "SynthSpeech")
        if os.path.isdir(folder):
            return folder
    where = f"neither in a repository checkout nor in the installed package ({package})"
    hint = "pass --recipes <checkout>/recipes/SynthSpeech"
    raise SystemExit(f"sbx {args.command}: the SynthSpeech recipes are {where}; {hint}")


def seeds(text):
    """``--seeds``: a count or a list, the same for every command.

    Example
    -------
    >>> seeds("3"), seeds("2,5"), seeds(3)
    ([1, 2, 3], [2, 5], [1, 2, 3])
    """
    items = [item.strip() for item in str(text).split(",")]
    if not all(item.isdigit() and int(item) > 0 for item in items):
        raise SystemExit(f"--seeds {text}: a count (3: seeds 1, 2 and 3) or a list (1,2,3) of positive integers")
    return list(range(1, int(items[0]) + 1)) if len(items) == 1 else [int(item) for item in items]


SEEDS_HELP = "a count (3: seeds 1, 2, 3) or a list (1,4,7)"


class DeprecatedOption(argparse.Action):
    """The old spelling of an option: sets what the new one (``new``) sets (``append``: adds to its list), with a
    warning naming the new one. Hidden from ``--help``."""

    def __init__(self, option_strings, dest, new=None, append=False, **kwargs):
        self.new, self.append = new, append
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        logging.getLogger("speechbrain_xfer").warning(
            "%s is now %s; the old spelling works until the next release", option_string, self.new
        )
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def example(text):
    """The epilog of a command's ``--help``: a runnable example."""
    return "example:\n  " + text.strip().replace("\n", "\n  ")


def report_failures(failed):
    """The exit status of a grid command: 1 (and a log line) when runs failed."""
    if failed:
        logger = logging.getLogger("speechbrain_xfer")
        logger.error("%d runs failed; rerun the same command to retry only them", len(failed))
        return 1
    return 0
