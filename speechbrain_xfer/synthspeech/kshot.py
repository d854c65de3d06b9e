"""Stratified, nested k-shot subsets of a training manifest."""

import collections
import csv
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_SHOTS = (1, 3, 10, 30)


def kshot_ids(rows, label_key, shots, seed):
    """Chooses ``k`` examples per class for each ``k`` in ``shots``.

    The subsets are nested: each class's examples are shuffled once with
    ``seed`` and every subset takes a prefix of that order, so the 1-shot
    set lies inside the 3-shot set, and so on.

    Arguments
    ---------
    rows : list of dict
        Manifest rows with ``ID`` and ``label_key``.
    label_key : str
        Column to stratify by.
    shots : sequence of int
        The values of k.
    seed : int
        Chooses the examples.

    Returns
    -------
    dict
        ``{k: [ID, ...]}`` in manifest order.

    Example
    -------
    >>> rows = [{"ID": str(i), "y": "ab"[i % 2]} for i in range(10)]
    >>> subsets = kshot_ids(rows, "y", (1, 3), seed=0)
    >>> len(subsets[1]), len(subsets[3]), set(subsets[1]) <= set(subsets[3])
    (2, 6, True)
    """
    by_class = collections.defaultdict(list)
    for row in rows:
        by_class[row[label_key]].append(row["ID"])
    rng = np.random.default_rng(seed)
    order = {label: list(rng.permutation(ids)) for label, ids in sorted(by_class.items())}
    position = {row["ID"]: i for i, row in enumerate(rows)}
    subsets = {}
    for k in shots:
        short = [label for label, ids in order.items() if len(ids) < k]
        if short:
            logger.warning(
                "%d classes have fewer than %d examples; their %d-shot sets hold all they have", len(short), k, k
            )
        chosen = [i for ids in order.values() for i in ids[:k]]
        subsets[k] = sorted(chosen, key=position.__getitem__)
    return subsets


def write_kshot_manifests(folder, label_key, seed, shots=DEFAULT_SHOTS):
    """Writes ``train_k{K}.csv`` next to ``train.csv`` in ``folder``."""
    with open(os.path.join(folder, "train.csv"), newline="") as f:
        reader = csv.DictReader(f)
        fieldnames, rows = reader.fieldnames, list(reader)
    by_id = {row["ID"]: row for row in rows}
    for k, ids in kshot_ids(rows, label_key, shots, seed).items():
        with open(os.path.join(folder, f"train_k{k}.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(by_id[i] for i in ids)


def write_sentence_subsets(folder, sizes, seed=0):
    """Writes ``train_n{N}.csv`` next to ``train.csv`` in ``folder``: N training utterances each, nested.

    The learning curves of a task without classes (ASR) count training
    sentences instead of examples per class. The utterances are shuffled once
    with ``seed`` and each subset takes a prefix of that order, so the smaller
    sets lie inside the larger ones; a size above the training set's takes it all.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> with open(folder / "train.csv", "w") as f:
    ...     _ = f.write("ID,transcript\\n" + "".join(f"u{i},text {i}\\n" for i in range(10)))
    >>> write_sentence_subsets(folder, (2, 5))
    >>> small, large = ([line.split(",")[0] for line in open(folder / f"train_n{n}.csv")][1:] for n in (2, 5))
    >>> len(small), len(large), set(small) <= set(large)
    (2, 5, True)
    """
    with open(os.path.join(folder, "train.csv"), newline="") as f:
        reader = csv.DictReader(f)
        fieldnames, rows = reader.fieldnames, list(reader)
    order = np.random.default_rng(seed).permutation(len(rows))
    for size in sizes:
        chosen = sorted(order[:size])
        with open(os.path.join(folder, f"train_n{size}.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows[i] for i in chosen)
