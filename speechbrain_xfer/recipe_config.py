"""A recipe's configuration: its YAML loaded with errors that name the file and the key, and its pretrained weights.

:func:`load_recipe_hparams` is ``load_hyperpyyaml`` whose errors say which key of which file is wrong (an
override the YAML does not have, a ``!PLACEHOLDER`` left unset); :class:`RecipeHparams` names a key that a
recipe reads and the YAML lacks; :func:`load_pretrained` loads ``pretrained_modules`` from
``pretrained_source``. Both :mod:`speechbrain_xfer.experiment` (the recipes' ``__main__``) and the export
(:mod:`speechbrain_xfer.hub.export`) read runs through them.
"""

import contextlib
import io
import logging
import os
import re

import speechbrain as sb
import yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML

from speechbrain_xfer.data.dataio import manifest_labels
from speechbrain_xfer.pretrained.loading import load_speechbrain_modules

logger = logging.getLogger(__name__)


REQUIRED_KEYS = (
    "output_folder",
    "save_folder",
    "data_folder",
    "train_csv",
    "valid_csv",
    "test_csv",
    "modules",
    "opt_class",
    "epoch_counter",
    "checkpointer",
    "train_dataloader_opts",
    "valid_dataloader_opts",
    "test_dataloader_opts",
)
"""The keys ``run_experiment`` and the recipes' ``dataio_prepare`` need in every recipe YAML."""

DATA_CHECK_KEYS = {"skip_bad_items": False, "min_duration": 0.1, "cache_folder": None}
"""Options of the check before training, with their defaults: in the YAML, or on the command line.
``cache_folder`` (default: ``<output_folder>/cache``) holds what the check learnt of each audio file, and is
where a frozen recipe's ``feature_cache`` lives; ``sbx curve`` gives all its runs one, under its output folder.
Nothing is written into the data folder."""

AUTO = "auto"
"""``n_classes: auto``: the number of classes is that of the labels in the training manifest."""


class RecipeConfigError(ValueError):
    """A recipe YAML or its overrides cannot be used as they are."""


def load_recipe_hparams(hparams_file, overrides=None):
    """``load_hyperpyyaml`` with errors that name the file and the key.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("lr: 0.1\\n")
    >>> load_recipe_hparams(path, {"lr": 0.5})["lr"]
    0.5
    >>> try:
    ...     load_recipe_hparams(path, {"learning_rate": 0.5})
    ... except RecipeConfigError as err:
    ...     print(str(err).split(": ", 1)[1])
    no such key: 'learning_rate' (given on the command line); check its spelling against the keys of the YAML
    """
    with open(hparams_file) as f:
        text = f.read()
    with _named_errors(hparams_file):
        return load_hyperpyyaml(text, overrides)


@contextlib.contextmanager
def _named_errors(hparams_file):
    """hyperpyyaml's errors for an override the YAML lacks and an unset ``!PLACEHOLDER``, as RecipeConfigErrors
    naming the file and the key."""
    try:
        yield
    except KeyError as err:
        message = str(err.args[0]) if err.args else ""
        if not message.startswith("Override"):
            raise
        key = message.split("'")[1]
        raise RecipeConfigError(
            f"{hparams_file}: no such key: '{key}' (given on the command line); "
            f"check its spelling against the keys of the YAML"
        ) from err
    except ValueError as err:
        if "must be replaced" not in str(err):
            raise
        key = str(err).split("'")[1]
        raise RecipeConfigError(
            f"{hparams_file}: the key '{key}' is a !PLACEHOLDER; give it on the command line, e.g. --{key}=..."
        ) from err


class MissingKeyError(RecipeConfigError, KeyError):
    """A key that the recipe reads is not in its YAML (a ``KeyError`` too, for code that expects one)."""

    __str__ = ValueError.__str__  # KeyError's would print the message in quotes


class RecipeHparams(dict):
    """The loaded YAML, for a recipe's ``dataio_prepare``: reading a key it lacks names the key and the file.

    Example
    -------
    >>> hparams = RecipeHparams({"lr": 0.1}, "x.yaml")
    >>> hparams.get("targets"), hparams["lr"]
    (None, 0.1)
    >>> try:
    ...     hparams["targets"]
    ... except MissingKeyError as err:
    ...     print(err)
    x.yaml: missing required key 'targets' (the recipe reads it); add it to the YAML
    """

    def __init__(self, values, hparams_file):
        super().__init__(values)
        self.hparams_file = hparams_file

    def __missing__(self, key):
        raise MissingKeyError(
            f"{self.hparams_file}: missing required key {key!r} (the recipe reads it); add it to the YAML"
        )


def check_required_keys(hparams, hparams_file):
    """Raises a :class:`RecipeConfigError` naming every :data:`REQUIRED_KEYS` key missing from the YAML.

    Example
    -------
    >>> try:
    ...     check_required_keys({"output_folder": "out"}, "x.yaml")
    ... except RecipeConfigError as err:
    ...     print(str(err)[:60])
    x.yaml: missing required keys: 'save_folder', 'data_folder',
    """
    missing = [key for key in REQUIRED_KEYS if key not in hparams]
    if missing:
        raise RecipeConfigError(
            f"{hparams_file}: missing required keys: {', '.join(map(repr, missing))}; "
            f"add them (see recipes/SynthSpeech/KWS/hparams/scratch.yaml)"
        )


def split_data_check_overrides(hparams_file, overrides):
    """Takes the :data:`DATA_CHECK_KEYS` that the YAML does not have out of the command-line overrides.

    Returns the value of each such key (given, or its default) and the other overrides. Keys that the YAML
    has stay overrides, so that the keys referring to them see the new value.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("lr: 0.1\\nmin_duration: 0.5\\n")
    >>> split_data_check_overrides(path, "lr: 0.2\\nskip_bad_items: True\\nmin_duration: 1.0")
    ({'skip_bad_items': True, 'cache_folder': None}, 'lr: 0.2\\nmin_duration: 1.0')
    """
    with open(hparams_file) as f:
        text = f.read()
    in_yaml = {key for key in DATA_CHECK_KEYS if re.search(rf"^{key}\s*:", text, re.MULTILINE)}
    options, kept = {}, []
    for line in (overrides or "").splitlines():
        key = line.split(":", 1)[0].strip()
        if key in DATA_CHECK_KEYS and key not in in_yaml:
            options[key] = yaml.safe_load(line)[key]
        else:
            kept.append(line)
    options = {**{k: v for k, v in DATA_CHECK_KEYS.items() if k not in in_yaml}, **options}
    return options, "\n".join(kept)


def data_check_options(hparams, hparams_file):
    """The checked :data:`DATA_CHECK_KEYS` options of a loaded YAML, for ``manifest_checks``."""
    skip, min_duration = hparams["skip_bad_items"], hparams["min_duration"]
    if not isinstance(skip, bool):
        raise RecipeConfigError(f"{hparams_file}: skip_bad_items must be True or False, not {skip!r}")
    if isinstance(min_duration, bool) or not isinstance(min_duration, (int, float)) or min_duration < 0:
        raise RecipeConfigError(f"{hparams_file}: min_duration must be a number of seconds >= 0, not {min_duration!r}")
    cache = hparams["cache_folder"] or os.path.join(hparams["output_folder"], "cache")
    return {"skip_bad_items": skip, "min_duration": float(min_duration), "cache_folder": str(cache)}


def resolved_values(hparams_file, overrides=None, strict=False):
    """The YAML's keys with ``!ref`` resolved and the overrides applied, as plain data: nothing is built.

    A tagged value (``!new:``, ``!name:``, ...) comes back as ruamel's tagged node; a ``!PLACEHOLDER`` that the
    overrides leave unset, as None. ``strict``: an unset ``!PLACEHOLDER`` or an override the YAML lacks is a
    :class:`RecipeConfigError` naming it, as in :func:`load_recipe_hparams`.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("data_folder: !PLACEHOLDER\\ntrain_csv: !ref <data_folder>/train.csv\\ntargets: [word]\\n")
    >>> values = resolved_values(path, {"data_folder": "/data"})
    >>> values["train_csv"], list(values["targets"])
    ('/data/train.csv', ['word'])
    """
    with open(hparams_file) as f:
        text = f.read()
    if strict:
        with _named_errors(hparams_file):
            text = resolve_references(io.StringIO(text), overrides or None, overrides_must_match=True).getvalue()
    else:
        given = overrides if isinstance(overrides, dict) else (YAML(typ="rt").load(overrides or "") or {})
        placeholders = re.findall(r"^(\w+):\s*!PLACEHOLDER", text, re.MULTILINE)
        unset = {key: None for key in placeholders if key not in given}
        text = resolve_references(io.StringIO(text), {**unset, **given} or None).getvalue()
    return dict(YAML(typ="rt").load(text) or {})


def class_count_overrides(hparams_file, overrides, values=None):
    """``overrides`` with ``n_classes: N`` added when the recipe's ``n_classes`` is ``auto``.

    N is the number of different labels of the recipe's one target in its training manifest (``train_csv``),
    so that a recipe need not state it; a number given on the command line (``--n_classes 11``) is kept.
    ``values`` are the YAML's :func:`resolved_values` with these overrides, when the caller has them.

    Example
    -------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "train.csv"), "w") as f:
    ...     _ = f.write("ID,wav,word\\na,a.wav,yes\\nb,b.wav,no\\nc,c.wav,yes\\n")
    >>> path = os.path.join(folder, "x.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write(f"train_csv: {folder}/train.csv\\ntargets: [word]\\nn_classes: auto\\n")
    >>> class_count_overrides(path, "lr: 0.1")
    'lr: 0.1\\nn_classes: 2'
    >>> class_count_overrides(path, "n_classes: 11")
    'n_classes: 11'
    """
    values = resolved_values(hparams_file, overrides) if values is None else values
    if str(values.get("n_classes")) != AUTO:
        return overrides
    targets = list(RecipeHparams(values, hparams_file)["targets"] or [])
    if len(targets) != 1:
        raise RecipeConfigError(
            f"{hparams_file}: n_classes: auto counts the labels of one target, and `targets` is {targets}; "
            f"give each head its number of classes"
        )
    count = len(_labels(values.get("train_csv"), targets[0], hparams_file))
    if isinstance(overrides, dict):
        return {**overrides, "n_classes": count}
    return "\n".join(line for line in ((overrides or "").strip(), f"n_classes: {count}") if line)


def _labels(train_csv, column, hparams_file):
    if not train_csv or not os.path.isfile(str(train_csv)):
        raise RecipeConfigError(
            f"{hparams_file}: n_classes: auto counts the labels of the training manifest, and train_csv "
            f"{train_csv} does not exist; prepare the data first or give --n_classes"
        )
    return set(manifest_labels(train_csv, column).values()) - {""}


def load_pretrained(hparams):
    """Loads ``pretrained_modules`` from ``pretrained_source``, when the YAML has both."""
    source, modules = hparams.get("pretrained_source"), hparams.get("pretrained_modules")
    if not source or not modules:
        return
    if sb.utils.distributed.is_distributed_initialized():
        # The main process first, so that a hub download happens once; the others wait, then read its files.
        sb.utils.distributed.run_on_main(_collect, args=[modules, source])
    paths = load_speechbrain_modules(modules, source)
    logger.info("loaded %s from %s", ", ".join(f"{k} ({v})" for k, v in paths.items()), source)


def _collect(modules, source):
    load_speechbrain_modules(modules, source)  # returns nothing: run_on_main broadcasts a return value
