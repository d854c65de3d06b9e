"""What a learning curve is measured on: a :class:`Target` (a recipe folder and a data folder), the SynthSpeech
tasks' (:func:`synthspeech_target`) or the user's own (:func:`data_target`), and the encoders a recipe's method
names train (:func:`method_encoder`)."""

import dataclasses
import glob
import logging
import os

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
        raise GridInputError(f"--data-folder {data}: no such folder")
    missing = [f for f in DATA_FILES if not os.path.isfile(os.path.join(data, f))]
    if missing:
        prepare = sorted(glob.glob(os.path.join(recipe, "*_prepare.py")))
        hint = f"; for a download of the recipe's dataset, run {prepare[0]} first" if prepare else ""
        raise GridInputError(
            f"--data-folder {data}: no {', '.join(missing)}; the folder needs train.csv, valid.csv and test.csv "
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
