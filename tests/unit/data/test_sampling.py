"""LengthGroupedSampler: SpeechBrain's random draws, regrouped into batches of similar durations."""

import random

import pytest
from speechbrain.dataio.sampler import ReproducibleRandomSampler

from speechbrain_xfer.data.sampling import LengthGroupedSampler

_RNG = random.Random(0)
DURATIONS = [_RNG.uniform(1.0, 3.0) for _ in range(50)]


def groups_of(order, size):
    return [order[i : i + size] for i in range(0, len(order), size)]


def padding(order, size):
    """Share of padding when ``order`` is cut into batches of ``size``."""
    batches = groups_of(order, size)
    filled = [sum(DURATIONS[i] for i in b) / (len(b) * max(DURATIONS[i] for i in b)) for b in batches]
    return 1 - sum(filled) / len(filled)


@pytest.mark.parametrize("draws", [{}, {"replacement": True, "num_samples": 96}])
def test_the_same_draws_as_speechbrain_regrouped(draws):
    for epoch in (0, 3):
        grouped = LengthGroupedSampler(DURATIONS, DURATIONS, group_size=4, pool_groups=6, seed=7, **draws)
        plain = ReproducibleRandomSampler(DURATIONS, seed=7, **draws)
        grouped.set_epoch(epoch)
        plain.set_epoch(epoch)
        order, reference = list(grouped), list(plain)
        assert sorted(order) == sorted(reference) and order != reference
        # Each pool holds the same draws as SpeechBrain's, each group of it is a run of sorted durations.
        for start in range(0, len(order), 24):
            assert sorted(order[start : start + 24]) == sorted(reference[start : start + 24])
        for group in groups_of(order, 4):
            assert [DURATIONS[i] for i in group] == sorted(DURATIONS[i] for i in group)
        assert padding(order, 4) < padding(reference, 4) / 2


def test_each_epoch_is_a_new_draw_and_an_epoch_is_reproducible():
    sampler = LengthGroupedSampler(DURATIONS, DURATIONS, group_size=4, seed=1, replacement=True, num_samples=40)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_durations_must_match_the_dataset():
    with pytest.raises(ValueError, match="3 durations for 50 items"):
        LengthGroupedSampler(DURATIONS, DURATIONS[:3], group_size=4)
