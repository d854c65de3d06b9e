"""Loading SpeechBrain-pretrained module weights (``<name>.ckpt`` files) into modules built by a recipe."""

import os

from huggingface_hub.errors import EntryNotFoundError, HFValidationError
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.pretrained.parameter_transfer import checked_parameter_transfer, uses_plain_transfer


def load_speechbrain_modules(modules, source, files=None, savedir=None):
    """Loads SpeechBrain pretrained weights into ``modules`` with SpeechBrain's ``Pretrainer``.

    This is how a SpeechBrain recipe fine-tunes from a pretrained model (e.g. the ``embedding_model.ckpt`` of
    ``speechbrain/spkrec-ecapa-voxceleb``): the modules are built from the recipe's hyperparameters, then each
    one gets the ``state_dict`` saved in ``<source>/<name>.ckpt``. The transfer is SpeechBrain's usual non-strict
    one (keys that do not match are logged as warnings), except that a file that cannot be read, a tensor of
    another shape, or a checkpoint that supplies less than half of a module's weights is an error
    (:func:`~speechbrain_xfer.pretrained.parameter_transfer.checked_parameter_transfer`): loading nothing and
    training from random weights without a word is the worst outcome.

    Arguments
    ---------
    modules : dict of str to torch.nn.Module
        The modules to load, by name.
    source : str or os.PathLike
        A local folder or a hub id (``speechbrain/spkrec-ecapa-voxceleb``) holding the checkpoint files.
    files : dict of str to str, optional
        File name inside ``source`` for some modules (default ``<name>.ckpt``), e.g.
        ``{"encoder": "embedding_model.ckpt"}``. An absolute path or a URL is used as it is.
    savedir : str or os.PathLike, optional
        Folder where the files are collected (linked or downloaded) as ``<name>.ckpt``; by default they are
        read where they are (local folder, HF cache).

    Returns
    -------
    dict of str to pathlib.Path
        The file each module was loaded from.

    Raises
    ------
    PretrainedSourceError
        If a file is missing or malformed (naming the file and the module), or the hub repo cannot be reached
        or, offline, is not in the HF cache.

    Example
    -------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> torch.save(torch.nn.Linear(4, 2).state_dict(), os.path.join(folder, "encoder.ckpt"))
    >>> encoder = torch.nn.Linear(4, 2)
    >>> paths = load_speechbrain_modules({"encoder": encoder}, folder)
    >>> paths["encoder"].name
    'encoder.ckpt'
    """
    source = os.fspath(source)
    files = dict(files or {})
    unknown = sorted(set(files) - set(modules))
    if unknown:
        raise ValueError(f"files names modules that are not in modules: {unknown} (modules: {sorted(modules)})")

    local_source = os.path.isdir(os.path.expanduser(source))
    if not local_source and (os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1):
        raise PretrainedSourceError(
            f"no such folder '{source}': expected a folder of SpeechBrain checkpoints (<name>.ckpt) or a hub id "
            "like speechbrain/spkrec-ecapa-voxceleb; offline, a hub id must already be in the HF cache",
            source,
        )

    paths = {}
    for name in modules:
        filename = files.get(name, f"{name}.ckpt")
        if os.path.isabs(filename) or "://" in filename:
            path = filename
        else:
            path = f"{source.rstrip('/')}/{filename}"
        # SpeechBrain's fetch would happily link (or return) a local file that does not exist and fail later in
        # torch.load with a message that does not say which module it was for; check first.
        is_local = os.path.isabs(path) or (local_source and "://" not in path)
        if is_local and not os.path.isfile(os.path.expanduser(path)):
            raise PretrainedSourceError(
                f"no file '{filename}' for module '{name}' in '{source}' (looked for '{path}'): pass "
                f"files={{'{name}': '<file name>'}} if the checkpoint has another name",
                source,
            )
        paths[name] = os.path.expanduser(path) if is_local else path

    # Modules with a transfer hook of their own keep it; the others get the plain transfer, with checks.
    checked = {name: checked_parameter_transfer(name) for name, obj in modules.items() if uses_plain_transfer(obj)}
    pretrainer = Pretrainer(collect_in=savedir, loadables=modules, paths=paths, custom_hooks=checked)
    try:
        collected = pretrainer.collect_files()
    except (OSError, ValueError, EntryNotFoundError, HFValidationError) as err:
        raise PretrainedSourceError(
            f"could not fetch {sorted(paths.values())} from '{source}': {err}; check the hub id and file names "
            "(offline, the files must already be in the HF cache)",
            source,
        ) from err
    pretrainer.load_collected()
    return collected


def save_pretrained_folder(folder, modules, hparams_file=None, test_stats=None):
    """Saves modules as a SpeechBrain pretrained folder that :func:`load_speechbrain_modules` reads.

    Each module's ``state_dict`` goes to ``<folder>/<name>.ckpt`` (plain
    tensors: loadable with ``torch.load(..., weights_only=True)``), the YAML
    that built them to ``source_hyperparams.yaml`` and the source task's test
    figures to ``source_stats.json``. The folder is written beside its final
    place and renamed into it, so it is either complete or absent.

    Example
    -------
    >>> import tempfile, torch
    >>> folder = os.path.join(tempfile.mkdtemp(), "encoder")
    >>> save_pretrained_folder(folder, {"encoder": torch.nn.Linear(4, 2)})
    >>> sorted(os.listdir(folder))
    ['encoder.ckpt']
    >>> _ = load_speechbrain_modules({"encoder": torch.nn.Linear(4, 2)}, folder)
    """
    import json
    import shutil

    import torch

    staging = f"{folder}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    for name, module in modules.items():
        torch.save(module.state_dict(), os.path.join(staging, f"{name}.ckpt"))
    if hparams_file is not None:
        shutil.copyfile(hparams_file, os.path.join(staging, "source_hyperparams.yaml"))
    if test_stats is not None:
        with open(os.path.join(staging, "source_stats.json"), "w") as f:
            json.dump(test_stats, f, indent=1)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.replace(staging, folder)
