"""Skip-if-done bookkeeping shared by the datasets' ``*_prepare.py`` scripts.

A prepare script writes its manifests, then records the options it used
(:func:`mark_prepared`); the next run with the same options finds them
(:func:`already_prepared`) and does nothing. Other options, or a manifest
gone missing, make it prepare again.
"""

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
