"""The one reader of the recipes' manifests: SpeechBrain CSVs with an ``ID``, a ``wav`` path (absolute, or under
``$data_root``) and label columns."""

import csv
import dataclasses
import os


class ManifestError(ValueError):
    """A manifest that cannot be used as it is."""


@dataclasses.dataclass
class Manifest:
    """A manifest as read: its columns, its rows (``""`` for a field a short row lacks) and each row's line."""

    path: str
    columns: list
    rows: list
    lines: list


def read_manifest(path, required=(), data_root=None, hint="check the manifest"):
    """Reads a manifest, checking that it exists and has the ``required`` columns.

    Arguments
    ---------
    path : str
        The CSV file.
    required : sequence of str
        Columns every use of the rows needs; a missing one is a :class:`ManifestError` naming it.
    data_root : str, optional
        Replaces ``$data_root`` in the ``wav`` column; None leaves the paths as written.
    hint : str
        What to do about a missing column, for the error message.

    Returns
    -------
    Manifest

    Example
    -------
    >>> path = getfixture("tmp_path") / "train.csv"
    >>> _ = path.write_text("ID,wav,word\\na,$data_root/a.wav,yes\\nb,/abs/b.wav\\n")
    >>> manifest = read_manifest(str(path), ["ID", "wav"], data_root="/data")
    >>> [row["wav"] for row in manifest.rows], manifest.rows[1]["word"], manifest.lines
    (['/data/a.wav', '/abs/b.wav'], '', [2, 3])
    >>> try:
    ...     read_manifest(str(path), ["ID", "emotion"], hint="check the recipe's targets")
    ... except ManifestError as error:
    ...     print(str(error).split("train.csv ")[1])
    has no column 'emotion' (columns: ['ID', 'wav', 'word']); check the recipe's targets
    """
    if not os.path.isfile(path):
        raise ManifestError(f"the manifest {path} does not exist; prepare the data first")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        missing = [c for c in required if c not in columns]
        if missing:
            raise ManifestError(f"{path} has no column {', '.join(map(repr, missing))} (columns: {columns}); {hint}")
        rows, lines = [], []
        for row in reader:
            # A short row has None for its missing fields; "" reads the same in every check.
            row = {k: v or "" for k, v in row.items() if k is not None}
            if data_root is not None and "wav" in row:
                row["wav"] = row["wav"].replace("$data_root", str(data_root))
            rows.append(row)
            lines.append(reader.line_num)
    return Manifest(path, columns, rows, lines)
