"""The grid of learning-curve runs: targets x methods x shots x seeds, each a recipe run.

A :class:`Target` is a recipe folder (``train.py``, ``hparams/<method>.yaml``)
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
import glob
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

from speechbrain_xfer.curves.launch import run_recipe

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Where a SynthSpeech task's recipe and corpus live."""

    recipe: str  # folder under recipes/SynthSpeech
    corpus: str  # folder under the corpus root
    # "k": shots are examples per class (train_k{N}.csv, written with the corpus); "n": training sentences
    # (train_n{N}.csv, written by prepare_subsets), for ASR, which has no classes.
    subset: str = "k"
    # The label column of the class (intent: the whole intent, what its accuracy counts); None for ASR.
    label: str = None


TASKS = {
    "kws": TaskSpec("KWS", "words/target", label="word"),
    "intent": TaskSpec("intent", "intent", label="intent"),
    "emotion": TaskSpec("emotion", "emotion", label="emotion"),
    "asr": TaskSpec("ASR", "asr/target", subset="n"),
}


ENCODERS = ("conv", "hf", "ge2e")
"""``conv``: the recipes' ConvEncoder (``hparams/<method>.yaml``); ``hf``: a hub-format transformer encoder
through HFEncoder (``hparams/hf_<method>.yaml``); ``ge2e``: the GE2E speaker encoder (``hparams/ge2e_<method>.yaml``,
in the recipes for real speech)."""


def method_encoder(method):
    """The encoder a recipe YAML name trains: ``"hf"`` for ``hf_finetune``, ``"conv"`` for ``finetune``.

    Example
    -------
    >>> [method_encoder(m) for m in ("finetune", "hf_lora", "ge2e_frozen")]
    ['conv', 'hf', 'ge2e']
    """
    prefix = method.split("_", 1)[0]
    return prefix if prefix in ENCODERS and "_" in method else "conv"


@dataclasses.dataclass(frozen=True)
class Target:
    """What one learning curve is measured on: a recipe folder and a data folder.

    Attributes
    ----------
    name : str
        The task's name in the report and in the run folders (``<out>/runs/<name>/...``).
    recipe : str
        Folder with ``train.py`` and ``hparams/<method>.yaml``.
    data : str
        Folder with ``train.csv``, ``valid.csv`` and ``test.csv`` (the recipes' ``--data_folder``).
    subsets : str
        Folder of the training subsets: ``data`` when it holds them, else one under the grid's output folder.
    subset : str
        ``"k"``: shots count examples per class (``train_k{N}.csv``); ``"n"``: utterances (``train_n{N}.csv``),
        for a recipe without classes (ASR).
    labels : tuple of str
        The label columns the k-shot subsets are stratified by (their combination is the class).
    """

    name: str
    recipe: str
    data: str
    subsets: str
    subset: str = "k"
    labels: tuple = ()

    def train_csv(self, shots):
        """The training manifest of ``shots`` (``"all"``: the data folder's ``train.csv``)."""
        if shots == "all":
            return os.path.join(self.data, "train.csv")
        return os.path.join(self.subsets, f"train_{self.subset}{shots}.csv")


SUBSET_SEED = 0
"""The seed of the drawn training subsets: the same lists for every method and seed of a grid, so that the
methods are compared on the same clips (the SynthSpeech corpus's own k-shot lists are fixed the same way)."""

DATA_FILES = ("train.csv", "valid.csv", "test.csv")


def _subsets_folder(data, subset, shots, out, name):
    """``data`` when it holds every subset file the shots need, else ``<out>/subsets/<name>``."""
    wanted = [f"train_{subset}{k}.csv" for k in shots if k != "all"]
    if all(os.path.isfile(os.path.join(data, f)) for f in wanted):
        return data
    return os.path.join(out, "subsets", name)


def synthspeech_target(task, recipes_root, corpus_root, shots=(), out=""):
    """The :class:`Target` of a SynthSpeech task (``kws``, ``intent``, ``emotion``, ``asr``).

    The corpus holds k-shot lists for 1, 3, 10 and 30 shots; other shot counts (and ASR's sentence counts) are
    drawn into ``<out>/subsets/<task>``.
    """
    spec = TASKS[task]
    data = os.path.join(corpus_root, spec.corpus)
    subsets = _subsets_folder(data, spec.subset, shots, out, task) if shots else data
    labels = (spec.label,) if spec.label else ()
    return Target(task, os.path.join(recipes_root, spec.recipe), data, subsets, spec.subset, labels)


def data_target(recipe, data, methods, shots, out, name=None):
    """The :class:`Target` of a recipe folder on a data folder of one's own.

    The label columns come from the recipe's ``targets`` key (in the YAML of the first of ``methods``); a
    recipe without one (ASR) counts training utterances instead of examples per class.

    Raises
    ------
    GridInputError
        When a folder, ``train.py``, the YAML or one of :data:`DATA_FILES` is missing, naming it.
    """
    from speechbrain_xfer.recipe_config import resolved_values

    if not os.path.isdir(recipe) or not os.path.isfile(os.path.join(recipe, "train.py")):
        raise GridInputError(f"--recipe {recipe}: not a recipe folder (it needs train.py and hparams/)")
    if not os.path.isdir(data):
        raise GridInputError(f"--data {data}: no such folder")
    missing = [f for f in DATA_FILES if not os.path.isfile(os.path.join(data, f))]
    if missing:
        prepare = sorted(glob.glob(os.path.join(recipe, "*_prepare.py")))
        hint = f"; for a download of the recipe's dataset, run {prepare[0]} first" if prepare else ""
        raise GridInputError(
            f"--data {data}: no {', '.join(missing)}; the folder needs train.csv, valid.csv and test.csv "
            f"(columns ID, wav and the label; see docs/own_data.md){hint}"
        )
    yaml = os.path.join(recipe, "hparams", f"{methods[0]}.yaml")
    if not os.path.isfile(yaml):
        raise GridInputError(f"--recipe {recipe}: no hparams/{methods[0]}.yaml")
    labels = resolved_values(yaml, {"data_folder": data}).get("targets")
    subset = "k" if labels else "n"
    name = name or os.path.basename(os.path.normpath(data))
    return Target(name, recipe, data, _subsets_folder(data, subset, shots, out, name), subset, tuple(labels or ()))


class GridInputError(FileNotFoundError, ValueError):
    """A recipe, data folder or manifest that a grid needs is missing; the message names it."""


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
    """
    pending = [r for r in runs if not os.path.isfile(r.summary_path)]
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
            return [
                pool.submit(
                    _execute,
                    r,
                    run_command(r, recipes_root, corpus_root, pretrained_source, extra_overrides, task_sources, cache),
                    threads,
                )
                for r in batch
            ]

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
    name = f"{run.task}/{run.method}/k{run.shots}/seed{run.seed}"
    if code != 0 or not os.path.isfile(run.summary_path):
        failed.append(run)
        logger.error("%s failed (exit %d); see %s", name, code, os.path.join(run.folder, "log.txt"))
    bar.set_postfix_str(f"{name} {seconds:.0f} s")
    bar.update()
