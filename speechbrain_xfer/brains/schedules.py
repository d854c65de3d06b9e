"""Which encoder layers train when, and at which learning rate.

- Freeze the encoder for the first N optimizer steps, then train it.
- Gradual unfreezing (ULMFiT, Howard & Ruder 2018): after the frozen steps,
  the top layer trains, and one more layer joins every M steps.
- Layer-wise learning-rate decay: layer i of L gets ``lr * decay**(L-1-i)``.
"""

from torch import nn


class LayerSchedule:
    """Freezing and gradual unfreezing of an encoder's layers.

    Arguments
    ---------
    freeze_steps : int
        Optimizer steps during which the whole encoder is frozen.
    unfreeze_every : int
        If > 0, after ``freeze_steps`` the top layer trains and one more
        layer (downwards) is unfrozen every ``unfreeze_every`` steps.
    frozen : bool
        Keep the whole encoder frozen for good (linear probing).

    Example
    -------
    >>> schedule = LayerSchedule(freeze_steps=10, unfreeze_every=5)
    >>> [schedule.trainable_count(step, 3) for step in (0, 9, 10, 14, 15, 20, 99)]
    [0, 0, 1, 1, 2, 3, 3]
    """

    def __init__(self, freeze_steps=0, unfreeze_every=0, frozen=False):
        self.freeze_steps = freeze_steps
        self.unfreeze_every = unfreeze_every
        self.frozen = frozen
        self._pinned = None

    @property
    def ever_freezes(self):
        """Whether some encoder layer is frozen at some step."""
        return self.frozen or self.freeze_steps > 0 or self.unfreeze_every > 0

    def trainable_count(self, step, num_layers):
        """How many of the top layers train at optimizer step ``step``."""
        if self.frozen or step < self.freeze_steps:
            return 0
        if self.unfreeze_every <= 0:
            return num_layers
        return min(num_layers, 1 + (step - self.freeze_steps) // self.unfreeze_every)

    def apply(self, layers, step):
        """Sets ``requires_grad`` (and eval mode for frozen layers) at ``step``.

        Frozen layers go to eval mode so that batch-norm statistics and
        dropout do not change what a frozen layer computes. Parameters that
        were already frozen at the first call (e.g. a hub model's CNN front
        end under ``freeze_feature_extractor``) are never unfrozen.

        Returns
        -------
        int
            The number of trainable layers.
        """
        if self._pinned is None:
            self._pinned = {id(p) for layer in layers for p in layer.parameters() if not p.requires_grad}
        count = self.trainable_count(step, len(layers))
        for i, layer in enumerate(layers):
            trainable = i >= len(layers) - count
            for param in layer.parameters():
                param.requires_grad_(trainable and id(param) not in self._pinned)
            if not trainable:
                layer.eval()
        return count


def layerwise_param_groups(encoder, layers, lr, decay=1.0):
    """One optimizer parameter group per layer, the lr decaying downwards.

    Parameters of ``encoder`` outside every layer (e.g. a layer-sum weight)
    join the top group.

    Example
    -------
    >>> enc = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    >>> [g["lr"] for g in layerwise_param_groups(enc, list(enc), lr=1.0, decay=0.5)]
    [0.25, 0.5, 1.0]
    """
    groups, seen = [], set()
    for depth, layer in enumerate(layers):
        params = [p for p in layer.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        groups.append({"params": params, "lr": lr * decay ** (len(layers) - 1 - depth)})
    rest = [p for p in encoder.parameters() if id(p) not in seen]
    if groups:
        groups[-1]["params"] += rest
    else:
        groups.append({"params": rest, "lr": lr})
    return [g for g in groups if g["params"]]


def unwrapped(module):
    """The module inside a DistributedDataParallel wrapper, or the module itself."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def encoder_layers(encoder):
    """The encoder's layers bottom to top, or the encoder as one layer."""
    module = unwrapped(encoder)
    return list(module.layers()) if hasattr(module, "layers") else [module]
