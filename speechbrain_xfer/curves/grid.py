"""The grid of learning-curve runs: tasks x methods x shots x seeds, each a recipe run.

Every run is ``python <recipe>/train.py <recipe>/hparams/<method>.yaml`` with
SpeechBrain overrides for the data, the k-shot manifest, the seed and the
output folder; a run whose ``summary.json`` exists is not run again.
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

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Where a SynthSpeech task's recipe and corpus live."""

    recipe: str  # folder under recipes/SynthSpeech
    corpus: str  # folder under the corpus root
    # "k": shots are examples per class (train_k{N}.csv, written with the corpus); "n": training sentences
    # (train_n{N}.csv, written by prepare_subsets), for ASR, which has no classes.
    subset: str = "k"


TASKS = {
    "kws": TaskSpec("KWS", "words/target"),
    "intent": TaskSpec("intent", "intent"),
    "emotion": TaskSpec("emotion", "emotion"),
    "asr": TaskSpec("ASR", "asr/target", subset="n"),
}


ENCODERS = ("conv", "hf")
"""``conv``: the recipes' ConvEncoder (``hparams/<method>.yaml``); ``hf``: a hub-format transformer encoder
through HFEncoder (``hparams/hf_<method>.yaml``)."""
HF_PREFIX = "hf_"


def recipe_methods(methods, encoder):
    """The recipe YAML names of ``methods`` for ``encoder``: ``["finetune"], "hf"`` -> ``["hf_finetune"]``."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder {encoder!r}: use one of {', '.join(ENCODERS)}")
    prefix = HF_PREFIX if encoder == "hf" else ""
    return [m if m.startswith(prefix) else prefix + m for m in methods]


@dataclasses.dataclass(frozen=True)
class Run:
    """One recipe run of the grid."""

    task: str
    method: str
    shots: object  # int, or "all"
    seed: int
    out: str

    @property
    def encoder(self):
        """``"hf"`` for the hub-format encoder's recipes (``hparams/hf_<method>.yaml``), else ``"conv"``."""
        return "hf" if self.method.startswith(HF_PREFIX) else "conv"

    @property
    def base_method(self):
        """The method without its encoder prefix: ``finetune`` for ``hf_finetune``."""
        return self.method.removeprefix(HF_PREFIX)

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
    """Every run, ordered so that the slow fine-tuning runs start first."""
    return [Run(t, m, k, s, out) for t in tasks for k in shots for s in seeds for m in methods]


def run_command(run, recipes_root, corpus_root, pretrained_source, extra_overrides=(), task_sources=None):
    """The command line of one run; ``task_sources`` ({task: folder}) overrides ``pretrained_source`` per task."""
    spec = TASKS[run.task]
    recipe = os.path.join(recipes_root, spec.recipe)
    data = os.path.join(corpus_root, spec.corpus)
    train_csv = os.path.join(data, "train.csv" if run.shots == "all" else f"train_{spec.subset}{run.shots}.csv")
    command = [
        sys.executable,
        os.path.join(recipe, "train.py"),
        os.path.join(recipe, "hparams", f"{run.method}.yaml"),
        "--data_folder",
        data,
        "--train_csv",
        train_csv,
        "--seed",
        str(run.seed),
        "--output_folder",
        run.folder,
    ]
    if run.method != "scratch":  # hf_scratch takes its architecture from the pretrained source
        sources = task_sources if run.encoder == "conv" else None  # the later source stages are ConvEncoders
        command += ["--pretrained_source", (sources or {}).get(run.task, pretrained_source)]
    return command + list(extra_overrides)


def prepare_subsets(runs, corpus_root):
    """Writes the sentence-count training subsets (``train_n{N}.csv``) that the grid's ASR runs need."""
    from speechbrain_xfer.synthspeech.kshot import write_sentence_subsets

    wanted = {}
    for run in runs:
        spec = TASKS[run.task]
        data = os.path.join(corpus_root, spec.corpus)
        if spec.subset == "n" and run.shots != "all" and os.path.isfile(os.path.join(data, "train.csv")):
            if not os.path.isfile(os.path.join(data, f"train_n{run.shots}.csv")):
                wanted.setdefault(data, set()).add(run.shots)
    for data, sizes in wanted.items():
        write_sentence_subsets(data, sorted(sizes))


def check_inputs(runs, recipes_root, corpus_root):
    """Fails before any training if a recipe, YAML or manifest of the grid is missing."""
    missing = []
    for run in runs:
        command = run_command(run, recipes_root, corpus_root, "")
        for path in (command[1], command[2], command[6]):
            if not os.path.isfile(path):
                missing.append(path)
    if missing:
        raise FileNotFoundError("the grid needs files that do not exist:\n  " + "\n  ".join(sorted(set(missing))))


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
):
    """Runs the pending runs, ``jobs`` at a time; returns the runs that failed.

    The cores are shared: each of the ``jobs`` processes gets ``threads``
    torch threads (default ``cpu_count // jobs``). The transfer runs start
    from ``pretrained_source``, or from ``task_sources[task]`` where given.

    ``before`` is work that makes ``pretrained_source`` (the demo's
    pretraining): it takes one of the ``jobs`` workers first, the ``scratch``
    runs, which need no pretrained encoder, take the others beside it, and
    every other run waits for it. An exception in it stops the grid.
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
                    run_command(r, recipes_root, corpus_root, pretrained_source, extra_overrides, task_sources),
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
