"""Fingerprints of what the frozen-encoder feature cache keeps: the front end's modules, and each audio file."""

import hashlib
import os

import torch

FORMAT_VERSION = 1
"""Part of every fingerprint: bump it when what an item holds changes."""


def front_end_fingerprint(modules):
    """SHA-256 of the modules' classes, plain settings and tensors (``{role: module or None}``).

    Example
    -------
    >>> a = front_end_fingerprint({"encoder": torch.nn.Linear(2, 2)})
    >>> a == front_end_fingerprint({"encoder": torch.nn.Linear(2, 2)})  # other random weights
    False
    """
    digest = hashlib.sha256(f"speechbrain_xfer feature cache {FORMAT_VERSION}".encode())
    for role, module in modules.items():
        digest.update(f"|{role}:".encode())
        if module is None:
            continue
        for name, sub in module.named_modules():
            settings = {k: v for k, v in vars(sub).items() if not k.startswith("_") and k not in ("training", "device")}
            plain = {k: v for k, v in settings.items() if _is_plain(v)}
            digest.update(f"|{name}:{type(sub).__module__}.{type(sub).__qualname__}{sorted(plain.items())}".encode())
    for name, tensor in front_end_tensors(modules):
        digest.update(f"|{name}:{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def front_end_tensors(modules):
    """(name, tensor) of each module's state dict, and of tensors kept as plain attributes (global statistics)."""
    for role, module in modules.items():
        if module is None:
            continue
        # Trained tensors that act after the cached part (an HFEncoder's layer weights) do not change it.
        excluded = set(getattr(module, "cache_excluded", ()))
        for name, tensor in module.state_dict(keep_vars=True).items():
            if name not in excluded:
                yield f"{role}.{name}", tensor
        for name, sub in module.named_modules():
            for key, value in vars(sub).items():
                if isinstance(value, torch.Tensor):
                    yield f"{role}.{name}.{key}", value


def _is_plain(value):
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    return isinstance(value, (tuple, list)) and all(_is_plain(v) for v in value)


def audio_fingerprint(wav):
    """The file's path (or a segment's description), size and modification time."""
    path = wav["file"] if isinstance(wav, dict) else wav
    stat = os.stat(path)
    return [repr(wav) if isinstance(wav, dict) else os.path.abspath(path), stat.st_size, stat.st_mtime_ns]
