"""The ``__main__`` of every recipe: parse, load the YAML, prepare, fit, test, summarize.

A recipe's ``train.py`` defines its Brain (or imports one) and its
``dataio_prepare(hparams)``, then calls :func:`run_experiment`::

    if __name__ == "__main__":
        run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])

which runs, in SpeechBrain's usual order: ``sb.parse_arguments``, DDP
initialization, ``load_hyperpyyaml`` (an override of a key that the YAML does
not have is an error naming the key and the file, and so is a missing
:data:`REQUIRED_KEYS` key), the experiment folder, ``dataio_prepare`` with the
check of every manifest item and audio file before training
(:mod:`speechbrain_xfer.data.validation`; options :data:`DATA_CHECK_KEYS`,
which any recipe takes on the command line, e.g. ``--skip_bad_items=True``,
even when its YAML does not have them), the pretrained weights (``pretrained_source`` and
``pretrained_modules``), the frozen-encoder feature cache (``feature_cache``,
when the encoder stays frozen and nothing augments the audio), ``fit``, a single
``evaluate`` on the test split with the best validation checkpoint, and
``summary.json`` (the test metric, the validation history and the train time,
which ``sbx curve`` reads).
"""

import logging
import os
import re
import time

import speechbrain as sb
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml

from speechbrain_xfer.data.feature_cache import add_feature_cache, feature_cache_applies
from speechbrain_xfer.data.validation import ManifestError, manifest_checks
from speechbrain_xfer.encoders.errors import PretrainedSourceError
from speechbrain_xfer.encoders.hf import HFEncoder
from speechbrain_xfer.encoders.speechbrain_pretrained import load_speechbrain_modules

logger = logging.getLogger(__name__)


REQUIRED_KEYS = ("output_folder", "save_folder", "data_folder", "train_csv", "valid_csv", "test_csv", "modules",
                 "opt_class", "epoch_counter", "checkpointer", "train_dataloader_opts", "valid_dataloader_opts",
                 "test_dataloader_opts")  # fmt: skip
"""The keys :func:`run_experiment` and the recipes' ``dataio_prepare`` need in every recipe YAML."""

DATA_CHECK_KEYS = {"skip_bad_items": False, "min_duration": 0.1}
"""Options of the check before training, with their defaults: in the YAML, or on the command line."""


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
        raise MissingKeyError(f"{self.hparams_file}: missing required key {key!r} (the recipe reads it); "
                              f"add it to the YAML")  # fmt: skip


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
        raise RecipeConfigError(f"{hparams_file}: missing required keys: {', '.join(map(repr, missing))}; "
                                f"add them (see recipes/SynthSpeech/KWS/hparams/scratch.yaml)")  # fmt: skip


def split_data_check_overrides(hparams_file, overrides):
    """Takes the :data:`DATA_CHECK_KEYS` that the YAML does not have out of the command-line overrides.

    Returns the value of each such key (given, or its default) and the other overrides. Keys that the YAML
    has stay overrides, so that the keys referring to them see the new value.

    Example
    -------
    >>> import tempfile
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


def _data_check_options(hparams, hparams_file):
    skip, min_duration = hparams["skip_bad_items"], hparams["min_duration"]
    if not isinstance(skip, bool):
        raise RecipeConfigError(f"{hparams_file}: skip_bad_items must be True or False, not {skip!r}")
    if isinstance(min_duration, bool) or not isinstance(min_duration, (int, float)) or min_duration < 0:
        raise RecipeConfigError(f"{hparams_file}: min_duration must be a number of seconds >= 0, "
                                f"not {min_duration!r}")  # fmt: skip
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


def run_experiment(brain_class, dataio_prepare, argv):
    """Runs a recipe from its command line; returns the Brain after testing, and the datasets."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    data_check, overrides = split_data_check_overrides(hparams_file, overrides)
    try:
        hparams = RecipeHparams({**load_recipe_hparams(hparams_file, overrides), **data_check}, hparams_file)
        check_required_keys(hparams, hparams_file)
        data_check = _data_check_options(hparams, hparams_file)
    except RecipeConfigError as err:
        raise SystemExit(f"error: {err}") from None
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)

    try:
        with manifest_checks(**data_check, progress=not run_opts.get("noprogressbar")):
            datasets = dataio_prepare(hparams)
        load_pretrained(hparams)
    except (RecipeConfigError, ManifestError, PretrainedSourceError) as err:
        raise SystemExit(f"error: {err}") from None
    if hparams.get("feature_cache") and feature_cache_applies(hparams):
        augment, views = hparams.get("wav_augment"), hparams.get("feature_cache_views") or 0
        add_feature_cache(datasets, hparams["feature_cache"], hparams["encoder"], hparams.get("compute_features"),
                          hparams.get("mean_var_norm"), wav_augment=augment, views=views)  # fmt: skip
        if augment is None:
            scope = ""
        elif views:
            scope = f" ({views} augmented versions of each training utterance)"
        else:
            scope = " for the validation and test splits (the training audio is augmented anew at every step)"
        logger.info("frozen encoder: its outputs are cached in %s%s", hparams["feature_cache"], scope)

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


def export_source(brain, train_set):
    """Exports a source-task run as a ``pretrained_source`` folder, with the source task's Fisher for EWC.

    The folder (``export_folder``) is the one ``sbx export`` writes (``encoder.ckpt``, the encoder alone,
    and what SpeechBrain's inference class for the task loads); for an :class:`HFEncoder`, the encoder's
    hub-format folder (:func:`_export_hf_source`). Either way it also holds ``ewc.ckpt``: the anchors and the
    diagonal Fisher of the source task for EWC, the mean squared gradient of the task's loss over
    ``fisher_batches`` training batches, scaled so that its largest entry is 1. The ``ewc`` recipes load it.
    """
    from speechbrain_xfer.hub.export import export_experiment
    from speechbrain_xfer.regularization import EWC

    ewc = EWC(brain.hparams.encoder)
    loader = sb.dataio.dataloader.make_dataloader(train_set, batch_size=brain.hparams.batch_size, shuffle=True)
    brain.modules.eval()

    def loss(batch):
        return brain.compute_task_loss(brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN)

    torch.manual_seed(brain.hparams.seed)
    ewc.estimate_fisher(loss, loader, max_batches=brain.hparams.fisher_batches, normalize=True)
    if isinstance(brain.hparams.encoder, HFEncoder):
        _export_hf_source(brain, {"ewc.ckpt": ewc.state_dict()})
        return
    export_experiment(brain.hparams.output_folder, brain.hparams.export_folder, overwrite=True,
                      extra_files={"ewc.ckpt": ewc.state_dict()})  # fmt: skip


def _export_hf_source(brain, extra_files):
    """Writes a source run's best :class:`HFEncoder` as a hub-format folder, with what its task adds.

    ``export_folder`` gets ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` (what
    ``save_pretrained`` writes, so ``HFEncoder`` and ``AutoModel.from_pretrained`` load it as they load a hub
    model), and beside them ``extra_files``, the CTC head (``ctc_head.ckpt``) and its character set
    (``tokenizer.ckpt``) when the run has them, for the ASR recipes that fine-tune the head too.
    ``hf_cache_id`` (``<org>/<name>``), when the YAML has it, also puts the folder in the HF cache under that
    hub id, where ``HF_HUB_OFFLINE=1`` finds it as it finds a model downloaded once.
    """
    from speechbrain_xfer.encoders.hf_folders import add_to_hf_cache, save_encoder_folder

    # The modules hold the best checkpoint already: run_experiment's test pass loaded it.
    hparams = brain.hparams
    files = dict(extra_files)
    if "ctc_head" in brain.modules:
        files["ctc_head.ckpt"] = brain.modules["ctc_head"].state_dict()
        chars = os.path.join(hparams.save_folder, "char_tokenizer.txt")
        if os.path.isfile(chars):
            files["tokenizer.ckpt"] = chars
    encoder = hparams.encoder
    save_encoder_folder(encoder.model, encoder.wrapper.feature_extractor, hparams.export_folder, files)
    logger.info("exported the encoder in hub format to %s", hparams.export_folder)
    if getattr(hparams, "hf_cache_id", None):
        add_to_hf_cache(hparams.export_folder, hparams.hf_cache_id)
