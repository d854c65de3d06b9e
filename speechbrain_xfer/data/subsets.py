"""Training subsets of a manifest for learning curves: k examples per class (stratified), or n utterances.

Both kinds are nested: the examples are shuffled once with the seed and every subset takes a prefix of that
order, so that the 1-shot set lies inside the 3-shot set, and so on, and a larger subset only adds clips.
"""

import collections
import csv
import logging
import os

import numpy as np

from speechbrain_xfer.data.manifest import read_manifest

logger = logging.getLogger(__name__)

DEFAULT_SHOTS = (1, 3, 10, 30)


def kshot_ids(rows, label_key, shots, seed):
    """Chooses ``k`` examples per class for each ``k`` in ``shots``.

    Arguments
    ---------
    rows : list of dict
        Manifest rows with ``ID`` and the label columns.
    label_key : str or sequence of str
        Column(s) to stratify by; with several, each combination of their values is a class.
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
    columns = (label_key,) if isinstance(label_key, str) else tuple(label_key)
    by_class = collections.defaultdict(list)
    for row in rows:
        by_class[tuple(row[c] for c in columns)].append(row["ID"])
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


def _read(train_csv, columns=()):
    hint = "the subsets are drawn per value of the recipe's `targets`"
    manifest = read_manifest(train_csv, ("ID", *columns), hint=hint)
    return manifest.columns, manifest.rows


def _write(path, fieldnames, rows):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def write_kshot_manifests(train_csv, folder, label_key, seed, shots=DEFAULT_SHOTS):
    """Writes ``folder/train_k{K}.csv`` for each K of ``shots``: K rows of ``train_csv`` per class, nested.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> with open(folder / "train.csv", "w") as f:
    ...     _ = f.write("ID,wav,word\\n" + "".join(f"u{i},$data_root/u{i}.wav,{'ab'[i % 2]}\\n" for i in range(8)))
    >>> write_kshot_manifests(folder / "train.csv", folder / "subsets", ["word"], seed=0, shots=(1, 3))
    >>> [len(open(folder / "subsets" / f"train_k{k}.csv").readlines()) - 1 for k in (1, 3)]
    [2, 6]
    """
    columns = (label_key,) if isinstance(label_key, str) else tuple(label_key)
    fieldnames, rows = _read(train_csv, columns)
    by_id = {row["ID"]: row for row in rows}
    for k, ids in kshot_ids(rows, columns, shots, seed).items():
        _write(os.path.join(folder, f"train_k{k}.csv"), fieldnames, (by_id[i] for i in ids))


def write_sentence_subsets(train_csv, folder, sizes, seed=0):
    """Writes ``folder/train_n{N}.csv`` for each N of ``sizes``: N utterances of ``train_csv`` each, nested.

    The learning curves of a task without classes (ASR) count training
    sentences instead of examples per class. A size above the training set's takes it all.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> with open(folder / "train.csv", "w") as f:
    ...     _ = f.write("ID,transcript\\n" + "".join(f"u{i},text {i}\\n" for i in range(10)))
    >>> write_sentence_subsets(folder / "train.csv", folder, (2, 5))
    >>> small, large = ([line.split(",")[0] for line in open(folder / f"train_n{n}.csv")][1:] for n in (2, 5))
    >>> len(small), len(large), set(small) <= set(large)
    (2, 5, True)
    """
    fieldnames, rows = _read(train_csv)
    order = np.random.default_rng(seed).permutation(len(rows))
    for size in sizes:
        _write(os.path.join(folder, f"train_n{size}.csv"), fieldnames, (rows[i] for i in sorted(order[:size])))
