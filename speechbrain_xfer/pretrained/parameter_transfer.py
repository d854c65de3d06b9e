"""SpeechBrain's non-strict parameter transfer, refusing a checkpoint that does not fit its module.

SpeechBrain's ``torch_parameter_transfer`` loads a ``state_dict`` with ``strict=False`` and only logs a warning
per key that does not match: a checkpoint of another model loads nothing, and training starts from random
weights without an error. :func:`checked_parameter_transfer` is the same transfer (SpeechBrain's key patching
hooks included) that raises a :class:`PretrainedSourceError` naming the file and the module when the file
cannot be read, when a tensor's shape differs, or when the checkpoint supplies less than
:data:`MIN_LOADED_FRACTION` of the module's weights (counted in numbers, so that a few new small tensors, such
as adapters or a layer-sum weight, are fine).
"""

import logging
from collections.abc import Mapping

import torch
from speechbrain.utils.checkpoints import (
    DEFAULT_TRANSFER_HOOKS,
    get_default_hook,
    hook_on_loading_state_dict_checkpoint,
    torch_parameter_transfer,
)

from speechbrain_xfer.pretrained.errors import PretrainedSourceError

logger = logging.getLogger(__name__)

MIN_LOADED_FRACTION = 0.5
"""The least share of a module's weights (in numbers) that its checkpoint must supply."""


def uses_plain_transfer(obj):
    """Whether SpeechBrain would load ``obj`` with its plain ``torch_parameter_transfer`` (no custom hook)."""
    return get_default_hook(obj, DEFAULT_TRANSFER_HOOKS) is torch_parameter_transfer


def checked_parameter_transfer(name):
    """A ``Pretrainer`` hook ``(module, path)`` for the module called ``name``.

    Raises
    ------
    PretrainedSourceError
        If the file is not a readable ``state_dict``, a shape differs, or the checkpoint supplies less than
        :data:`MIN_LOADED_FRACTION` of the module's weights. The module may be partly loaded by then.

    Example
    -------
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "encoder.ckpt")
    >>> torch.save(torch.nn.GRU(4, 8).state_dict(), path)
    >>> try:
    ...     checked_parameter_transfer("encoder")(torch.nn.Linear(4, 8), path)
    ... except PretrainedSourceError as err:
    ...     print(str(err).split("encoder.ckpt' ")[1][:60])
    holds none of the 2 tensors of module 'encoder' (it lacks we
    """

    def transfer(module, path):
        state = _read_state_dict(name, path)
        try:
            result = module.load_state_dict(state, strict=False)
        except RuntimeError as err:  # strict=False still refuses a tensor of another shape
            raise PretrainedSourceError(
                f"'{path}' does not fit module '{name}': {_first_lines(err)}; the checkpoint is of another "
                "architecture or size: check pretrained_source and the module's hyperparameters",
                str(path),
            ) from err
        _check_coverage(name, path, module, result)

    return transfer


def _read_state_dict(name, path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load has no common error type: EOFError, UnpicklingError, RuntimeError, ...
        raise PretrainedSourceError(
            f"cannot read '{path}', the checkpoint of module '{name}' ({type(err).__name__}: {_first_lines(err)}): "
            "the file is truncated or not a torch checkpoint; download or export it again",
            str(path),
        ) from err
    if not isinstance(state, Mapping):
        raise PretrainedSourceError(
            f"'{path}' (the checkpoint of module '{name}') holds a {type(state).__name__}, not a state_dict; "
            "save it with torch.save(module.state_dict(), path)",
            str(path),
        )
    # As SpeechBrain's torch_patched_state_dict_load does, once the file is known to hold a state_dict.
    return hook_on_loading_state_dict_checkpoint(state)


def _check_coverage(name, path, module, result):
    expected = module.state_dict()
    missing = [k for k in result.missing_keys if k in expected]
    total = sum(t.numel() for t in expected.values())
    loaded = total - sum(expected[k].numel() for k in missing)
    if total and loaded < MIN_LOADED_FRACTION * total:
        found = "none" if len(missing) == len(expected) else f"{len(expected) - len(missing)}"
        raise PretrainedSourceError(
            f"'{path}' holds {found} of the {len(expected)} tensors of module '{name}' (it lacks "
            f"{_some(missing)}; it has {_some(result.unexpected_keys)}, which the module does not): "
            f"{loaded / total:.0%} of the weights would be loaded; it is the checkpoint of another model: check "
            "pretrained_source and which file each pretrained module is loaded from",
            str(path),
        )
    if missing or result.unexpected_keys:
        logger.warning(
            "%s -> module '%s': %d tensors not in the checkpoint keep their values (%s); %d tensors of "
            "the checkpoint are not used (%s)",
            path,
            name,
            len(missing),
            _some(missing),
            len(result.unexpected_keys),
            _some(result.unexpected_keys),
        )


def _some(keys, shown=3):
    keys = list(keys)
    if not keys:
        return "none"
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _first_lines(err, lines=3):
    return " ".join(str(err).strip().splitlines()[:lines])
