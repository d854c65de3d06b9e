"""Random training batches of similar durations, so that less of each batch is padding.

A batch costs as much as its longest utterance times its size: with the
SynthSpeech sentences (1.3 to 2.7 s), random batches of 8 are about a
quarter padding. :class:`LengthGroupedSampler` draws the same random
indices as SpeechBrain's ``ReproducibleRandomSampler`` (with replacement
when asked), then, within each pool of a few batches' worth of draws, sorts
them by duration, cuts the pool into batches and shuffles the batches' order:
each epoch still sees a fresh random draw, each batch holds neighbours in
duration. ``python benchmarks/length_grouping.py`` measures the padding and
the time per training step with and without it.
"""

import torch
from speechbrain.dataio.sampler import ReproducibleRandomSampler


class LengthGroupedSampler(ReproducibleRandomSampler):
    """``ReproducibleRandomSampler`` whose draws come out in groups of ``group_size`` similar durations.

    Arguments
    ---------
    data_source : sized
        The dataset.
    durations : sequence of float
        Duration of each item of ``data_source``, in its order.
    group_size : int
        Items per group: the loader's batch size (times the number of
        processes under DDP, whose sampler wrapper deals each group out
        across them).
    pool_groups : int
        Groups sorted together: more means less padding and batches less random.
    seed : int
        As in ``ReproducibleRandomSampler``: the draws depend on ``seed + epoch`` only.
    **kwargs
        ``replacement``, ``num_samples``: as in ``torch.utils.data.RandomSampler``.

    Example
    -------
    >>> durations = [1.0, 3.0, 1.1, 2.9, 1.2, 3.1, 0.9, 2.8]
    >>> sampler = LengthGroupedSampler(range(8), durations, group_size=2, pool_groups=4, seed=0)
    >>> order = list(sampler)
    >>> sorted(order) == list(range(8))  # without replacement: each item once
    True
    >>> groups = [order[i : i + 2] for i in range(0, 8, 2)]
    >>> all(abs(durations[a] - durations[b]) < 0.25 for a, b in groups)
    True
    >>> sampler.set_epoch(1); list(sampler) != order
    True
    """

    def __init__(self, data_source, durations, group_size, pool_groups=8, seed=563375142, **kwargs):
        super().__init__(data_source, seed=seed, **kwargs)
        if len(durations) != len(data_source):
            raise ValueError(f"{len(durations)} durations for {len(data_source)} items")
        self.durations = [float(d) for d in durations]
        self.group_size = int(group_size)
        self.pool_groups = int(pool_groups)

    def __iter__(self):
        draws = list(super().__iter__())  # seeds self.generator with seed + epoch
        pool = self.group_size * self.pool_groups
        order = []
        for start in range(0, len(draws), pool):
            ranked = sorted(draws[start : start + pool], key=self.durations.__getitem__)
            groups = [ranked[i : i + self.group_size] for i in range(0, len(ranked), self.group_size)]
            for g in torch.randperm(len(groups), generator=self.generator).tolist():
                order.extend(groups[g])
        return iter(order)


def item_durations(dataset):
    """Durations of a ``DynamicItemDataset``'s items from its manifest's ``duration`` column, or None without one.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> item_durations(DynamicItemDataset({"a": {"duration": "1.5"}, "b": {"duration": 2.0}}))
    [1.5, 2.0]
    >>> item_durations(DynamicItemDataset({"a": {"words": "yes"}})) is None
    True
    """
    data, ids = getattr(dataset, "data", None), getattr(dataset, "data_ids", None)
    if data is None or ids is None:
        return None
    try:
        return [float(data[i]["duration"]) for i in ids]
    except (KeyError, TypeError, ValueError):
        return None


def training_sampler(dataset, loader_kwargs, steps_per_epoch=None, length_grouping=8, seed=563375142):
    """The sampler of a training loader, or None where SpeechBrain's own choice stands.

    With ``steps_per_epoch``, an epoch is that many batches drawn with
    replacement: validation (and early stopping) then come at the same step
    counts whatever the size of a k-shot training set. These draws, or a
    shuffled epoch, are grouped into batches of similar durations
    (:class:`LengthGroupedSampler`, pools of ``length_grouping`` batches)
    unless ``length_grouping`` is 0 or the manifest has no duration column.
    None when the loader neither shuffles nor draws, or has a sampler already.
    Under DDP the draws cover every process's batches.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({str(i): {"duration": 1.0 + i} for i in range(6)})
    >>> type(training_sampler(data, {"batch_size": 2, "shuffle": True})).__name__
    'LengthGroupedSampler'
    >>> len(training_sampler(data, {"batch_size": 2}, steps_per_epoch=5, length_grouping=0))
    10
    >>> training_sampler(data, {"batch_size": 2}) is None
    True
    """
    random_order = steps_per_epoch or loader_kwargs.get("shuffle", False)
    if not random_order or loader_kwargs.get("sampler") is not None or loader_kwargs.get("batch_sampler"):
        return None
    batch_size, world_size = loader_kwargs.get("batch_size", 1), _world_size()
    draws = {"seed": seed}
    if steps_per_epoch:
        draws.update(replacement=True, num_samples=steps_per_epoch * batch_size * world_size)
    durations = item_durations(dataset) if length_grouping else None
    if durations is not None:
        return LengthGroupedSampler(
            dataset, durations, group_size=batch_size * world_size, pool_groups=length_grouping, **draws
        )
    if steps_per_epoch:
        return ReproducibleRandomSampler(dataset, **draws)
    return None


def _world_size():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1
