"""What the transferability estimators score: a manifest's labelled items, and a frozen front end's outputs
for them, mean-pooled over time (through the frozen-encoder feature cache)."""

import os

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_xfer.data.feature_cache import FrozenEncoderCache
from speechbrain_xfer.data.manifest import read_manifest


def read_labelled_items(manifest, target, data_root=None):
    """``[(id, wav path)]`` and integer labels of a manifest's items, and the class names.

    ``$data_root`` in the ``wav`` column is replaced by ``data_root`` (default: the manifest's folder).
    """
    data_root = data_root or os.path.dirname(os.path.abspath(manifest))
    rows = read_manifest(manifest, ("ID", "wav", target), data_root, hint="pass --target <column>").rows
    if not rows:
        raise ValueError(f"{manifest} has no items")
    classes = sorted({row[target] for row in rows})
    items = [(row["ID"], row["wav"]) for row in rows]
    return items, np.array([classes.index(row[target]) for row in rows]), classes


def pooled_features(items, front_end, cache_root, progress=True):
    """``(items, layers, dim)`` mean-pooled outputs of the front end, computed through the feature cache."""
    encoder, compute_features, mean_var_norm = front_end
    cache = FrozenEncoderCache(cache_root, encoder, compute_features, mean_var_norm)
    pooled = []
    for uid, wav in tqdm(items, desc="items encoded", unit="item", disable=not progress):
        encoded = cache(uid, wav)  # (frames, dim) or (frames, layers, dim)
        pooled.append(encoded.float().mean(dim=0).reshape(-1, encoded.shape[-1]))
    return torch.stack(pooled).numpy()


class AllHiddenStates(torch.nn.Module):
    """A frozen :class:`~speechbrain_xfer.encoders.HFEncoder` seen as its every hidden state,
    ``(batch, frames, num_layers + 1, dim)``: the front end the feature cache keeps for layer scoring."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, wavs, wav_lens=None):
        return self.encoder.hidden_states(wavs, wav_lens)
