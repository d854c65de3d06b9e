"""Whole dataset items kept in memory once computed, for splits whose items never change within a run.

With the frozen-encoder feature cache in memory, what is left of a later epoch's data loading is
SpeechBrain's per-item pipeline itself: for every utterance, every epoch, the dynamic items run again (the
cache lookup, the label encoding) only to give the same outputs. :func:`remember_items` makes a dataset
return each item it has computed as it was, while the feature cache still holds it in memory, its audio
file and the front end are unchanged (:meth:`FrozenEncoderCache.kept`); that took a cached linear-probing epoch from
8x to over 10x faster than an uncached one (``benchmarks/feature_cache.py``).
"""

from speechbrain.dataio.dataset import DynamicItemDataset


class RememberedItemDataset(DynamicItemDataset):
    """A ``DynamicItemDataset`` that returns the items it computed again, while ``remembers(item)`` holds (asked at
    every access).

    Made by :func:`remember_items` from an existing dataset (its class is swapped; nothing is copied).
    """

    def __getitem__(self, index):
        key = self._remember_token()
        if key != self._remembered_token:
            self._remembered, self._remembered_token = {}, key
        item = self._remembered.get(index)
        if item is None or not self._remembers(item):
            item = super().__getitem__(index)
            if self._remembers(item):
                self._remembered[index] = item
        return dict(item)  # a collate function may change the dict it gets; the tensors it only reads

    def set_output_keys(self, keys):
        self._remembered = {}
        super().set_output_keys(keys)

    def add_dynamic_item(self, func, takes=None, provides=None):
        self._remembered = {}
        super().add_dynamic_item(func, takes, provides)


def remember_items(dataset, remembers, token):
    """Makes ``dataset`` (a plain ``DynamicItemDataset``) keep its items: ``remembers(item)`` says whether an item
    may be kept or returned again, ``token()`` changes whenever every kept item must be forgotten. Other datasets
    are left alone.

    Example
    -------
    >>> dataset = DynamicItemDataset({"a": {"x": 1}})
    >>> calls = []
    >>> dataset.add_dynamic_item(lambda x: calls.append(x) or x + 1, takes="x", provides="y")
    >>> dataset.set_output_keys(["id", "y"])
    >>> remember_items(dataset, lambda item: True, lambda: 0)
    >>> dataset[0], dataset[0], len(calls)
    ({'id': 'a', 'y': 2}, {'id': 'a', 'y': 2}, 1)
    """
    if type(dataset) is not DynamicItemDataset:
        return
    dataset.__class__ = RememberedItemDataset
    dataset._remembers, dataset._remember_token = remembers, token
    dataset._remembered, dataset._remembered_token = {}, None
