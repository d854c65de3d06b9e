"""The ``__main__`` of every recipe: parse, load the YAML, prepare, fit, test, summarize.

A recipe's ``train.py`` defines its Brain (or imports one) and its
``dataio_prepare(hparams)``, then calls :func:`run_experiment`::

    if __name__ == "__main__":
        run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])

which runs, in SpeechBrain's usual order: ``sb.parse_arguments``, DDP
initialization, ``load_hyperpyyaml`` (an override of a key that the YAML does
not have is an error naming the key and the file), the experiment folder,
``dataio_prepare``, the pretrained weights (``pretrained_source`` and
``pretrained_modules``), the frozen-encoder feature cache (``feature_cache``,
when the encoder stays frozen and nothing augments the audio), ``fit``, a single
``evaluate`` on the test split with the best validation checkpoint, and
``summary.json`` (the test metric, the validation history and the train time,
which ``sbx curve`` reads).
"""

import logging
import os
import time

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_xfer.data.feature_cache import add_feature_cache, feature_cache_applies
from speechbrain_xfer.encoders.speechbrain_pretrained import load_speechbrain_modules

logger = logging.getLogger(__name__)


class RecipeConfigError(ValueError):
    """A recipe YAML or its overrides cannot be used as they are."""


def load_recipe_hparams(hparams_file, overrides=None):
    """``load_hyperpyyaml`` with errors that name the file and the key.

    Example
    -------
    >>> import tempfile
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
        raise RecipeConfigError(f"{hparams_file}: no such key: '{key}' (given on the command line); "
                                f"check its spelling against the keys of the YAML") from err  # fmt: skip
    except ValueError as err:
        if "must be replaced" not in str(err):
            raise
        key = str(err).split("'")[1]
        raise RecipeConfigError(f"{hparams_file}: the key '{key}' is a !PLACEHOLDER; give it on the command "
                                f"line, e.g. --{key}=...") from err  # fmt: skip


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


def run_experiment(brain_class, dataio_prepare, argv):
    """Runs a recipe from its command line; returns the Brain after testing, and the datasets."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    try:
        hparams = load_recipe_hparams(hparams_file, overrides)
    except RecipeConfigError as err:
        raise SystemExit(f"error: {err}") from None
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)

    datasets = dataio_prepare(hparams)
    load_pretrained(hparams)
    if hparams.get("feature_cache") and feature_cache_applies(hparams):
        add_feature_cache(list(datasets.values()), hparams["feature_cache"], hparams["encoder"],
                          hparams.get("compute_features"), hparams.get("mean_var_norm"))  # fmt: skip
        logger.info("frozen encoder: its outputs are cached in %s", hparams["feature_cache"])

    brain = brain_class(modules=hparams["modules"], opt_class=hparams["opt_class"], hparams=hparams,
                        run_opts=run_opts, checkpointer=hparams["checkpointer"])  # fmt: skip
    start = time.perf_counter()
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs=hparams["train_dataloader_opts"],
              valid_loader_kwargs=hparams["valid_dataloader_opts"])  # fmt: skip
    train_time, steps = time.perf_counter() - start, brain.optimizer_step
    brain.evaluate(datasets["test"], test_loader_kwargs=hparams["test_dataloader_opts"], **brain.best_checkpoint_key)
    if sb.utils.distributed.if_main_process():
        brain.write_summary(os.path.join(hparams["output_folder"], "summary.json"), train_time, steps)
    return brain, datasets
