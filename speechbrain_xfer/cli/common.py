"""What several ``sbx`` commands share: the SynthSpeech recipes folder, seeds, failures."""

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


def seeds(count):
    """``--seeds 3`` -> ``[1, 2, 3]``."""
    return list(range(1, count + 1))


def report_failures(failed):
    """The exit status of a grid command: 1 (and a log line) when runs failed."""
    import logging

    if failed:
        logging.getLogger("speechbrain_xfer").error(
            "%d runs failed; rerun the same command to retry only them", len(failed)
        )
        return 1
    return 0


def example(text):
    """The epilog of a command's ``--help``: a runnable example."""
    return "example:\n  " + text.strip().replace("\n", "\n  ")
