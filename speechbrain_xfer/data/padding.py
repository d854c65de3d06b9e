"""Batches padded as SpeechBrain pads them, in one copy per item.

SpeechBrain's ``PaddedBatch`` pads each item with ``torch.nn.functional.pad`` and then stacks the padded
copies: two copies of every item, and two calls per item. With the frozen-encoder feature cache, whose items
are ready in memory, that padding was a fifth of a training epoch (``benchmarks/feature_cache.py``).
:func:`pad_right` copies each item once into the batch (``pad_sequence``); its outputs are
``batch_pad_right``'s, value for value.
"""

import functools

import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.data_utils import batch_pad_right


def pad_right(tensors, mode="constant", value=0):
    """``speechbrain.utils.data_utils.batch_pad_right``, for constant padding in one allocation.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The batch, ``(len(tensors), *largest shape)``, and each item's length relative to the longest.

    Example
    -------
    >>> batch, lengths = pad_right([torch.ones(2, 3), torch.ones(4, 3)])
    >>> batch.shape, batch[0, 2:].abs().sum().item(), lengths
    (torch.Size([2, 4, 3]), 0.0, tensor([0.5000, 1.0000]))
    """
    first = tensors[0] if len(tensors) else None
    if (
        mode != "constant"
        or len(tensors) < 2
        or first.ndim == 0
        or any(t.shape[1:] != first.shape[1:] for t in tensors)
    ):
        return batch_pad_right(tensors, mode=mode, value=value)  # its own cases and its own errors
    longest = max(t.shape[0] for t in tensors)
    batch = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value)
    return batch, torch.tensor([t.shape[0] / longest for t in tensors])


#: ``PaddedBatch`` with :func:`pad_right`: the collate function of the recipes' data loaders.
padded_batch = functools.partial(PaddedBatch, padding_func=pad_right)
