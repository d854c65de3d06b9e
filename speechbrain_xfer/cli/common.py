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


def add_launcher_options(parser):
    """``--launcher`` and the ``--slurm-*`` options of the grid commands (curve, tune, rank-check)."""
    group = parser.add_argument_group("launcher (docs/cluster.md)")
    group.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        default="local",
        help="local: --jobs processes on this machine; slurm: one SLURM job per run, submitted through submitit "
        "(run the same command again to wait for jobs already submitted) (default: local)",
    )
    group.add_argument("--slurm-partition", default=None, help="sbatch --partition")
    group.add_argument("--slurm-time", type=int, default=60, help="sbatch --time of each run, in minutes (default: 60)")
    group.add_argument(
        "--slurm-cpus-per-run", type=int, default=1, help="sbatch --cpus-per-task; the run's torch threads (default: 1)"
    )
    group.add_argument(
        "--slurm-gpus-per-run",
        type=int,
        default=0,
        help="sbatch --gpus-per-node; above 1 the run is launched with torchrun, one process per GPU (default: 0)",
    )
    group.add_argument("--slurm-mem-gb", type=float, default=None, help="sbatch --mem, in GB")
    group.add_argument(
        "--slurm-signal-delay",
        type=int,
        default=120,
        help="seconds of warning before a preemption or the time limit, in which a run saves a checkpoint before "
        "it is requeued (sbatch --signal=USR2@<seconds>) (default: 120)",
    )
    group.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, repeatable: --slurm account=speech --slurm qos=low",
    )
    group.add_argument(
        "--slurm-poll", type=float, default=10.0, help="seconds between two looks at the queue (default: 10)"
    )


def launcher(args, out):
    """The launcher the options name: None for local, else a :class:`~speechbrain_xfer.curves.slurm.SlurmLauncher`
    whose files go to ``<out>/slurm``."""
    if args.launcher == "local":
        return None
    from speechbrain_xfer.curves.slurm import SlurmLauncher

    extra = {}
    for item in args.slurm:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise SystemExit(f"sbx {args.command}: --slurm {item}: write KEY=VALUE, e.g. --slurm account=speech")
        extra[key.removeprefix("--").replace("-", "_")] = value
    return SlurmLauncher(
        folder=os.path.join(os.path.abspath(out), "slurm"),
        partition=args.slurm_partition,
        time_min=args.slurm_time,
        cpus_per_run=args.slurm_cpus_per_run,
        gpus_per_run=args.slurm_gpus_per_run,
        mem_gb=args.slurm_mem_gb,
        signal_delay_s=args.slurm_signal_delay,
        sbatch=extra,
        poll_s=args.slurm_poll,
    )
