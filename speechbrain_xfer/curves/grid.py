"""The grid of learning-curve runs: targets x methods x shots x seeds, each a recipe run.

A :class:`~speechbrain_xfer.curves.targets.Target` is a recipe folder (``train.py``, ``hparams/<method>.yaml``)
and a data folder holding ``train.csv``, ``valid.csv`` and ``test.csv``: a
SynthSpeech task (:func:`synthspeech_target`) or the user's own data
(:func:`data_target`). Every run is ``python <recipe>/train.py
<recipe>/hparams/<method>.yaml`` with SpeechBrain overrides for the data, the
training subset, the seed, the output folder and the cache folder; a run whose
``summary.json`` exists is not run again. The training subsets
(``train_k{N}.csv``: N examples per class; ``train_n{N}.csv``: N utterances)
are read from the data folder when it holds them all, and are otherwise drawn
into the grid's output folder (:func:`prepare_subsets`): nothing is written
into the data folder.
"""

import dataclasses
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

from speechbrain_xfer.curves.launch import run_recipe
from speechbrain_xfer.curves.targets import (  # noqa: F401 (the grid's callers import the targets from here too)
    DATA_FILES,
    ENCODERS,
    SUBSET_SEED,
    TASKS,
    GridInputError,
    Target,
    TaskSpec,
    data_target,
    method_encoder,
    synthspeech_target,
)

logger = logging.getLogger(__name__)


def recipe_methods(methods, encoder):
    """The recipe YAML names of ``methods`` for ``encoder``: ``["finetune"], "hf"`` -> ``["hf_finetune"]``."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder {encoder!r}: use one of {', '.join(ENCODERS)}")
    prefix = "" if encoder == "conv" else f"{encoder}_"
    return [m if m.startswith(prefix) else prefix + m for m in methods]


@dataclasses.dataclass(frozen=True)
class Run:
    """One recipe run of the grid."""

    task: str
    method: str
    shots: object  # int, or "all"
    seed: int
    out: str
    target: Target = None  # None: the SynthSpeech task named ``task``, in the recipes and corpus roots given

    def resolve(self, recipes_root, corpus_root):
        """The run's :class:`Target`: its own, else the SynthSpeech task's in ``recipes_root``/``corpus_root``."""
        return self.target or synthspeech_target(self.task, recipes_root, corpus_root)

    @property
    def encoder(self):
        """The encoder its recipe YAML trains (:func:`method_encoder`): ``"hf"`` for ``hf_finetune``."""
        return method_encoder(self.method)

    @property
    def base_method(self):
        """The method without its encoder prefix: ``finetune`` for ``hf_finetune`` and ``ge2e_finetune``."""
        return self.method if self.encoder == "conv" else self.method.removeprefix(f"{self.encoder}_")

    @property
    def name(self):
        """``task/method/k<shots>/seed<seed>``, as the logs name the run."""
        return f"{self.task}/{self.method}/k{self.shots}/seed{self.seed}"

    @property
    def folder(self):
        return os.path.join(self.out, "runs", self.task, self.method, f"k{self.shots}", f"seed{self.seed}")

    @property
    def summary_path(self):
        return os.path.join(self.folder, "summary.json")

    @property
    def sort_key(self):
        return (self.task, self.method, math.inf if self.shots == "all" else self.shots, self.seed)


def parse_shots(text):
    """``"1,3,10,all"`` -> ``[1, 3, 10, "all"]``."""
    shots = []
    for item in text.split(","):
        item = item.strip()
        if item == "all":
            shots.append("all")
        elif item.isdigit() and int(item) > 0:
            shots.append(int(item))
        else:
            raise ValueError(f"--shots takes positive integers or 'all', separated by commas; got {item!r}")
    return shots


def grid(tasks, methods, shots, seeds, out):
    """Every run, ordered so that the slow fine-tuning runs start first.

    ``tasks``: :class:`Target` objects, or the names of SynthSpeech tasks.
    """
    runs = []
    for t in tasks:
        name, target = (t.name, t) if isinstance(t, Target) else (t, None)
        runs += [Run(name, m, k, s, out, target) for k in shots for s in seeds for m in methods]
    return runs


def cache_folder(out):
    """The grid's cache folder: what the checks learnt of each audio file and the frozen encoders' outputs,
    shared by the runs of each target."""
    return os.path.join(out, "cache")


def run_source(run, pretrained_source, task_sources=None):
    """The ``--pretrained_source`` of a run, or None for ``scratch`` (which starts from random weights).

    ``pretrained_source`` is a folder (or hub id), or ``{encoder: folder}`` with the key ``""`` for the
    encoders not named; ``task_sources`` ({task: folder}) overrides the default for the ConvEncoder's runs of
    a task (the later SynthSpeech source stages are ConvEncoders).

    Example
    -------
    >>> sources = {"": "words/encoder", "ge2e": "ge2e"}
    >>> [run_source(Run("fsdd", m, 1, 1, "out"), sources) for m in ("scratch", "finetune", "ge2e_frozen")]
    [None, 'words/encoder', 'ge2e']
    """
    if run.method == "scratch":  # hf_scratch takes its architecture from the pretrained source
        return None
    if isinstance(pretrained_source, dict):
        if run.encoder in pretrained_source:
            return pretrained_source[run.encoder]
        pretrained_source = pretrained_source.get("")
    sources = task_sources if run.encoder == "conv" else None
    return (sources or {}).get(run.task, pretrained_source)


def run_command(run, recipes_root, corpus_root, pretrained_source, extra_overrides=(), task_sources=None, cache=None):
    """The command line of one run; its pretrained source is :func:`run_source`'s.

    ``cache`` holds the runs' cache folders, one per target (``--cache_folder <cache>/<task>``); None leaves
    the recipe's default, under the run's output folder.
    """
    target = run.resolve(recipes_root, corpus_root)
    recipe, data, train_csv = target.recipe, target.data, target.train_csv(run.shots)
    command = [
        sys.executable,
        os.path.join(recipe, "train.py"),
        os.path.join(recipe, "hparams", f"{run.method}.yaml"),
        "--data_folder",
        data,
        "--train_csv",
        train_csv,
        # The data folder's own, also for a recipe that would otherwise prepare manifests of its own.
        "--valid_csv",
        os.path.join(data, "valid.csv"),
        "--test_csv",
        os.path.join(data, "test.csv"),
        "--seed",
        str(run.seed),
        "--output_folder",
        run.folder,
        *(["--cache_folder", os.path.join(cache, run.task)] if cache else []),
    ]
    source = run_source(run, pretrained_source, task_sources)
    if source is not None:
        command += ["--pretrained_source", source]
    return command + list(extra_overrides)


def prepare_subsets(runs):
    """Draws the training subsets that the runs' targets keep outside their data folder and lack.

    Examples per class (``train_k{N}.csv``) are stratified by the target's label columns and nested (the
    1-shot list lies inside the 3-shot list, ...); utterance counts (``train_n{N}.csv``) are nested too. Both
    are drawn with :data:`SUBSET_SEED`, and a subset folder is drawn whole, so that its lists nest.
    """
    from speechbrain_xfer.data.subsets import write_kshot_manifests, write_sentence_subsets

    wanted = {}
    for run in runs:
        target = run.target
        if target is None or run.shots == "all" or target.subsets == target.data:
            continue
        wanted.setdefault(target, set()).add(run.shots)
    for target, sizes in wanted.items():
        if all(os.path.isfile(target.train_csv(k)) for k in sizes):
            continue
        train = os.path.join(target.data, "train.csv")
        if target.subset == "n":
            write_sentence_subsets(train, target.subsets, sorted(sizes), seed=SUBSET_SEED)
        else:
            write_kshot_manifests(train, target.subsets, target.labels, SUBSET_SEED, sorted(sizes))
        logger.info("training subsets of %s (%s shots) drawn into %s", target.name, sorted(sizes), target.subsets)


def check_inputs(runs, recipes_root=None, corpus_root=None):
    """Fails before any training if a recipe, YAML or manifest of the grid is missing (a :class:`GridInputError`
    listing each)."""
    missing = []
    for run in runs:
        command = run_command(run, recipes_root, corpus_root, "")
        for path in (command[1], command[2], command[6]):
            if not os.path.isfile(path):
                missing.append(path)
    if missing:
        raise GridInputError("the grid needs files that do not exist:\n  " + "\n  ".join(sorted(set(missing))))


def _execute(run, command, threads):
    os.makedirs(run.folder, exist_ok=True)
    start = time.perf_counter()
    code = run_recipe(command, os.path.join(run.folder, "log.txt"), threads)
    return run, code, time.perf_counter() - start


def run_grid(
    runs,
    recipes_root,
    corpus_root,
    pretrained_source,
    jobs=1,
    extra_overrides=(),
    progress=True,
    threads=None,
    before=None,
    task_sources=None,
    cache=None,
    launcher=None,
    wait=True,
):
    """Runs the pending runs, ``jobs`` at a time; returns the runs that failed.

    The cores are shared: each of the ``jobs`` processes gets ``threads``
    torch threads (default ``cpu_count // jobs``). The transfer runs start
    from ``pretrained_source``, or from ``task_sources[task]`` where given.

    ``before`` is work that makes ``pretrained_source`` (the demo's
    pretraining): it takes one of the ``jobs`` workers first, the ``scratch``
    runs, which need no pretrained encoder, take the others beside it, and
    every other run waits for it. An exception in it stops the grid.

    ``cache`` is every run's ``--cache_folder`` (see :func:`cache_folder`).

    ``launcher``: a :class:`~speechbrain_xfer.curves.slurm.SlurmLauncher` runs them as SLURM jobs instead
    (``jobs`` and ``threads`` unused); with ``wait=False`` it only submits them, and ``launcher.wait()``
    later waits for every grid submitted so far.
    """
    pending = [r for r in runs if not os.path.isfile(r.summary_path)]
    commands = {
        r: run_command(r, recipes_root, corpus_root, pretrained_source, extra_overrides, task_sources, cache)
        for r in pending
    }
    if launcher is not None:
        if before is not None:
            raise ValueError("work that makes the pretrained source runs on the local launcher only")
        done = len(runs) - len(pending)
        logger.info("%d runs in the grid, %d already done, %d for SLURM", len(runs), done, len(pending))
        launcher.submit(pending, commands)
        return launcher.wait(progress) if wait else []
    # Longest first (fine-tuning on many shots), so that the last runs are short ones.
    pending.sort(key=lambda r: (r.method == "frozen", -(math.inf if r.shots == "all" else r.shots)))
    logger.info(
        "%d runs in the grid, %d already done, %d to run, %d at a time",
        len(runs),
        len(runs) - len(pending),
        len(pending),
        jobs,
    )
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    independent = [r for r in pending if before is not None and r.method == "scratch"]
    dependent = [r for r in pending if r not in independent]
    failed = []
    with (
        ThreadPoolExecutor(max_workers=jobs) as pool,
        tqdm(total=len(pending), disable=not progress, desc="runs", unit="run") as bar,
    ):

        def submit(batch):
            return [pool.submit(_execute, r, commands[r], threads) for r in batch]

        prior = pool.submit(before) if before is not None else None
        futures, collected = submit(independent), set()
        if prior is not None:
            # Report the runs that finish beside it as they do, so that the progress bar moves meanwhile.
            for future in as_completed([prior, *futures]):
                if future is prior:
                    break
                _collect(future, failed, bar)
                collected.add(future)
            prior.result()
        futures = [f for f in futures if f not in collected] + submit(dependent)
        for future in as_completed(futures):
            _collect(future, failed, bar)
    return failed


def _collect(future, failed, bar):
    run, code, seconds = future.result()
    if code != 0 or not os.path.isfile(run.summary_path):
        failed.append(run)
        logger.error("%s failed (exit %d); see %s", run.name, code, os.path.join(run.folder, "log.txt"))
    bar.set_postfix_str(f"{run.name} {seconds:.0f} s")
    bar.update()
