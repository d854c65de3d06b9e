"""A recipe's configuration: its YAML loaded with errors that name the file and the key, and its pretrained weights.

:func:`load_recipe_hparams` is ``load_hyperpyyaml`` whose errors say which key of which file is wrong (an
override the YAML does not have, a ``!PLACEHOLDER`` left unset); :class:`RecipeHparams` names a key that a
recipe reads and the YAML lacks; :func:`load_pretrained` loads ``pretrained_modules`` from
``pretrained_source``. Both :mod:`speechbrain_xfer.experiment` (the recipes' ``__main__``) and the export
(:mod:`speechbrain_xfer.hub.export`) read runs through them.
"""

import logging
import re

import speechbrain as sb
import yaml
from hyperpyyaml import load_hyperpyyaml

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

DATA_CHECK_KEYS = {"skip_bad_items": False, "min_duration": 0.1}
"""Options of the check before training, with their defaults: in the YAML, or on the command line."""


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
    try:
        return load_hyperpyyaml(text, overrides)
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
    ({'skip_bad_items': True}, 'lr: 0.2\\nmin_duration: 1.0')
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
    return {"skip_bad_items": skip, "min_duration": float(min_duration)}


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
