"""Skip-if-done bookkeeping shared by the datasets' ``*_prepare.py`` scripts.

A prepare script writes its manifests, then records the options it used
(:func:`mark_prepared`); the next run with the same options finds them
(:func:`already_prepared`) and does nothing. Other options, or a manifest
gone missing, make it prepare again.
"""

import csv
import json
import os


def already_prepared(save_folder, options, splits, options_file):
    """Whether every ``<split>.csv`` and ``options_file`` exist in ``save_folder`` and the options match.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> already_prepared(folder, {"setup": "12"}, ["train"], "prep.json")
    False
    >>> open(os.path.join(folder, "train.csv"), "w").close()
    >>> mark_prepared(folder, {"setup": "12"}, "prep.json")
    >>> already_prepared(folder, {"setup": "12"}, ["train"], "prep.json")
    True
    >>> already_prepared(folder, {"setup": "35"}, ["train"], "prep.json")
    False
    """
    done = os.path.join(save_folder, options_file)
    if not os.path.isfile(done) or not all(os.path.isfile(os.path.join(save_folder, f"{s}.csv")) for s in splits):
        return False
    with open(done) as f:
        return json.load(f) == options


def mark_prepared(save_folder, options, options_file):
    """Records ``options`` in ``save_folder/options_file``, after the manifests are written."""
    with open(os.path.join(save_folder, options_file), "w") as f:
        json.dump(options, f)


def write_split_manifests(save_folder, rows, fields, source, label=None, shots=(), seed=0):
    """Writes ``<split>.csv`` for each split of ``rows`` and, with ``label``, the k-shot lists of ``train.csv``.

    Arguments
    ---------
    save_folder : str
        Where the manifests go.
    rows : dict
        ``{split: [row, ...]}``; every split must have rows.
    fields : sequence of str
        The manifests' columns.
    source : str
        The data folder the rows come from, named when a split is empty.
    label : str, optional
        The column the k-shot lists ``train_k{N}.csv`` are stratified by.
    shots, seed
        The N of the k-shot lists, and the seed that draws them
        (:func:`speechbrain_xfer.data.subsets.write_kshot_manifests`).

    Raises
    ------
    FileNotFoundError
        If a split has no row (nothing is written then).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> rows = {"train": [{"ID": "a", "y": "1"}, {"ID": "b", "y": "2"}], "test": [{"ID": "c", "y": "1"}]}
    >>> write_split_manifests(folder, rows, ["ID", "y"], "data", label="y", shots=(1,))
    >>> sorted(os.listdir(folder))
    ['test.csv', 'train.csv', 'train_k1.csv']
    """
    from speechbrain_xfer.data.subsets import write_kshot_manifests

    empty = [split for split, split_rows in rows.items() if not split_rows]
    if empty:
        raise FileNotFoundError(f"{source}: no clip for the {', '.join(empty)} split")
    os.makedirs(save_folder, exist_ok=True)
    for split, split_rows in rows.items():
        with open(os.path.join(save_folder, f"{split}.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(split_rows)
    if label is not None:
        write_kshot_manifests(os.path.join(save_folder, "train.csv"), save_folder, label, seed, sorted(shots))
