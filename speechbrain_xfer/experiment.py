"""The ``__main__`` of every recipe: parse, load the YAML, prepare, fit, test, summarize.

A recipe's ``train.py`` defines its Brain (or imports one) and its
``dataio_prepare(hparams)``, then calls :func:`run_experiment`::

    if __name__ == "__main__":
        run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])

which runs, in SpeechBrain's usual order: ``sb.parse_arguments``, DDP
initialization, ``load_hyperpyyaml`` (an override of a key that the YAML does
not have is an error naming the key and the file, and so is a missing
:data:`~speechbrain_xfer.recipe_config.REQUIRED_KEYS` key), the experiment folder, ``dataio_prepare`` with the
check of every manifest item and audio file before training
(:mod:`speechbrain_xfer.data.validation`; options :data:`~speechbrain_xfer.recipe_config.DATA_CHECK_KEYS`,
which any recipe takes on the command line, e.g. ``--skip_bad_items=True``,
even when its YAML does not have them), the pretrained weights (``pretrained_source`` and
``pretrained_modules``), the hidden state of an ``output_layer: auto`` encoder
(:mod:`speechbrain_xfer.transferability.layer_choice`), the frozen-encoder feature cache (``feature_cache``,
when the encoder stays frozen and nothing augments the audio), ``fit``, a single
``evaluate`` on the test split with the best validation checkpoint, and
``summary.json`` (the test metric, the validation history and the train time,
which ``sbx curve`` reads).
"""

import atexit
import gc
import logging
import os
import time

import speechbrain as sb
import torch

# Imported before any process group exists: the functions of torch.distributed.nn.functional take
# ``group=group.WORLD`` as a default, evaluated at import, and ten such defaults would otherwise keep the
# process group alive past destroy_process_group (see _destroy_process_group).
import torch.distributed.nn  # noqa: F401

from speechbrain_xfer.data.feature_cache import add_feature_cache, feature_cache_applies
from speechbrain_xfer.data.validation import ManifestError, manifest_checks
from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.recipe_config import (
    RecipeConfigError,
    RecipeHparams,
    check_required_keys,
    class_count_overrides,
    data_check_options,
    load_pretrained,
    load_recipe_hparams,
    resolved_values,
    split_data_check_overrides,
)
from speechbrain_xfer.transferability.layer_choice import choose_output_layers

logger = logging.getLogger(__name__)


def run_experiment(brain_class, dataio_prepare, argv):
    """Runs a recipe from its command line; returns the Brain after testing, and the datasets."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    destroy_process_group_at_exit()
    data_check, overrides = split_data_check_overrides(hparams_file, overrides)
    try:
        # Checked before anything is built, and before n_classes: auto reads train_csv.
        values = resolved_values(hparams_file, overrides, strict=True)
        check_required_keys(values, hparams_file)
        given, overrides = overrides, class_count_overrides(hparams_file, overrides, values)
        hparams = RecipeHparams({**load_recipe_hparams(hparams_file, overrides), **data_check}, hparams_file)
        data_check = data_check_options(hparams, hparams_file)
    except (RecipeConfigError, ManifestError) as err:
        raise SystemExit(f"error: {err}") from None
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)
    if overrides != given:
        logger.info(
            "n_classes: auto -> %d %s classes in %s", hparams["n_classes"], *hparams["targets"], hparams["train_csv"]
        )

    try:
        with manifest_checks(**data_check, progress=not run_opts.get("noprogressbar")):
            datasets = dataio_prepare(hparams)
        load_pretrained(hparams)
        choose_output_layers(hparams, progress=not run_opts.get("noprogressbar"))
    except (RecipeConfigError, ManifestError, PretrainedSourceError) as err:
        raise SystemExit(f"error: {err}") from None
    if hparams.get("feature_cache") and feature_cache_applies(hparams):
        augment, views = hparams.get("wav_augment"), hparams.get("feature_cache_views") or 0
        add_feature_cache(
            datasets,
            hparams["feature_cache"],
            hparams["encoder"],
            hparams.get("compute_features"),
            hparams.get("mean_var_norm"),
            wav_augment=augment,
            views=views,
        )
        if augment is None:
            scope = ""
        elif views:
            scope = f" ({views} augmented versions of each training utterance)"
        else:
            scope = " for the validation and test splits (the training audio is augmented anew at every step)"
        logger.info("frozen encoder: its outputs are cached in %s%s", hparams["feature_cache"], scope)

    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    start = time.perf_counter()
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    train_time, steps = time.perf_counter() - start, brain.optimizer_step
    brain.evaluate(datasets["test"], test_loader_kwargs=hparams["test_dataloader_opts"], **brain.best_checkpoint_key)
    if sb.utils.distributed.if_main_process():
        summary = os.path.join(hparams["output_folder"], "summary.json")
        brain.write_summary(summary, train_time, steps, recipe_file=os.path.abspath(hparams_file))
    return brain, datasets


def destroy_process_group_at_exit():
    """Under DDP, registers :func:`_destroy_process_group` to run at exit; a script of one's own that calls
    ``ddp_init_group`` calls this after it."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        atexit.register(_destroy_process_group, [torch.distributed.group.WORLD])


def _destroy_process_group(groups):
    """Destroys the process group while the interpreter is still whole, joining gloo's worker threads.

    A gloo worker thread frees each finished collective's tensors after the caller has moved on, and freeing a
    tensor made in Python takes the GIL. If that happens once the interpreter is finalizing, the thread is
    killed inside C++ code and the rank aborts ("terminate called without an active exception") after a run
    that finished and saved everything; torchrun then reports the run as failed. The last collective of a run
    is SpeechBrain's broadcast after the test log, just before exit, so this was seen about once in 15
    two-process runs on a loaded machine. ``destroy_process_group`` alone does not join the threads: the
    backend lives while anything references the group, here the DDP wrappers (their reducers) of the Brain
    that ``run_experiment`` returned. Those are garbage once the recipe is done; collecting them and then
    dropping the last reference from Python (whose holder releases the GIL, so a worker waiting for it can
    finish) makes the backend drain its queue and join its threads here. ``groups`` holds that reference
    (the world group), taken when the handler was registered, so this works after a caller's own
    ``destroy_process_group`` too.
    """
    group = groups.pop()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    gc.collect()
    del group
