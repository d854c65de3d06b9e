"""A check of a recipe's manifests and their audio before training: every bad item in one report.

A file that cannot be read, or a label that the model cannot learn, should stop a run before its first step,
not at hour three, and the user should learn about every such item at once, not one per attempt.
Within :func:`manifest_checks` (which :func:`speechbrain_xfer.experiment.run_experiment` opens around a recipe's
``dataio_prepare``), the dataset builders of :mod:`speechbrain_xfer.data.dataio` call :func:`check_manifests`
on their manifests before reading them: it raises one :class:`ManifestError` listing every bad item, or, with
``skip_bad_items``, logs them and returns manifests without them. Outside that block they check nothing, as
before. :func:`validate_manifests` reads every row of the manifests and every audio file they name, and returns a
:class:`ManifestReport`: the bad items (a missing, empty, unreadable, zero-length, too short or NaN/inf file;
an empty ID or one used twice in a manifest; a missing or unknown label) with what is wrong with each, and
the files that are not 16 kHz mono (they are resampled and down-mixed once and cached, see
:class:`speechbrain_xfer.data.dataio.ResampledAudioCache`). :func:`write_manifests_without` writes the manifests
without the bad items, for a run that skips them.

What each audio file holds is cached (``cache_file``) by its path, size and modification time, so the many runs
of a study on the same corpus read each file once.
"""

import contextlib
import contextvars
import csv
import logging
import os
from dataclasses import dataclass, field

import speechbrain as sb
from tqdm import tqdm

from speechbrain_xfer.data.audio_facts import AudioFactsCache
from speechbrain_xfer.data.manifest import ManifestError, read_manifest

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The sample rate every encoder of the recipes expects."""

CACHE_NAME = ".audio_checks.json"
"""The cache of :func:`validate_manifests`, in the run's cache folder (never in the data folder)."""


@dataclass(frozen=True)
class CheckOptions:
    """How :func:`check_manifests` treats bad items (see :func:`manifest_checks`)."""

    skip_bad_items: bool = False
    min_duration: float = 0.1
    progress: bool = True
    cache_folder: str = None


# The options of the run under way, set by manifest_checks: the recipes' dataio_prepare functions build their
# datasets without a way to pass them, and code outside a run keeps its old behaviour (no check).
_ACTIVE = contextvars.ContextVar("manifest_checks", default=None)


@contextlib.contextmanager
def manifest_checks(skip_bad_items=False, min_duration=0.1, progress=True, cache_folder=None):
    """Within this block, the dataset builders of :mod:`~speechbrain_xfer.data.dataio` check their manifests.

    Arguments
    ---------
    skip_bad_items : bool
        Train and test without the bad items (logged and counted) instead of stopping.
    min_duration : float
        Audio shorter than this (seconds) is a bad item.
    progress : bool
        Shows a progress bar over the items.
    cache_folder : str, optional
        Where what was learnt of each audio file is kept for the next run (:data:`CACHE_NAME`); None keeps
        nothing.

    Example
    -------
    >>> with manifest_checks(skip_bad_items=True):
    ...     _ACTIVE.get()
    CheckOptions(skip_bad_items=True, min_duration=0.1, progress=True, cache_folder=None)
    >>> print(_ACTIVE.get())
    None
    """
    token = _ACTIVE.set(CheckOptions(skip_bad_items, min_duration, progress, cache_folder))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_cache_folder():
    """The cache folder of the run whose :func:`manifest_checks` block is open, or None."""
    options = _ACTIVE.get()
    return options.cache_folder if options is not None else None


def check_manifests(csv_files, data_folder, save_folder, label_columns=(), class_columns=()):
    """The manifests to build datasets from, after the check that :func:`manifest_checks` turned on.

    Under DDP the main process checks (and writes), the others get its result.

    Arguments
    ---------
    csv_files : dict
        ``{split: path}``.
    data_folder : str
        Replaces ``$data_root`` in the ``wav`` column; nothing is written there.
    save_folder : str
        With ``skip_bad_items``, the manifests without the bad items go to ``<save_folder>/checked_manifests``.
    label_columns, class_columns : sequence of str
        As in :func:`validate_manifests`.

    Returns
    -------
    dict
        ``{split: path}``: ``csv_files`` itself, or the manifests without the bad items.

    Raises
    ------
    ManifestError
        Listing every bad item, unless they are skipped; or when skipping them leaves a split empty.
    """
    options = _ACTIVE.get()
    if options is None:
        return csv_files
    report, kept = sb.utils.distributed.run_on_main(
        _check_on_main, args=[csv_files, data_folder, save_folder, label_columns, class_columns, options]
    )
    if report.bad and not options.skip_bad_items:
        raise ManifestError(
            f"{report.listing()}\nfix or remove these items (or their manifest rows), or pass "
            f"--skip_bad_items=True to train and test without them"
        )
    return kept


def _check_on_main(csv_files, data_folder, save_folder, label_columns, class_columns, options):
    cache_file = None
    if options.cache_folder:
        os.makedirs(options.cache_folder, exist_ok=True)
        cache_file = os.path.join(options.cache_folder, CACHE_NAME)
    report = validate_manifests(
        csv_files,
        data_folder,
        label_columns,
        class_columns,
        options.min_duration,
        cache_file,
        options.progress,
    )
    if report.conversion_note():
        logger.info(report.conversion_note(cached=bool(options.cache_folder)))
    if report.shared_ids:
        shown = ", ".join(f"{i} ({' and '.join(s)})" for i, s in list(report.shared_ids.items())[:3])
        logger.warning(
            "%d IDs are in the manifests of several splits (%s); if they are the same utterances, "
            "the test is not held out",
            len(report.shared_ids),
            shown,
        )
    if not report.bad or not options.skip_bad_items:
        return report, csv_files
    logger.warning("skip_bad_items: skipping %s", report.listing())
    left = [split for split, n in report.bad_per_split().items() if n == report.items[split]]
    if left:
        raise ManifestError(f"skip_bad_items would leave no items in {', '.join(left)}; {report.listing()}")
    return report, write_manifests_without(report, csv_files, os.path.join(save_folder, "checked_manifests"))


@dataclass(frozen=True)
class BadItem:
    """A manifest row that cannot be trained or tested on, and why."""

    split: str
    manifest: str
    line: int
    id: str
    wav: str
    problems: tuple

    def __str__(self):
        return f"{self.manifest}:{self.line}: {self.id or '<no ID>'} ({self.wav or '<no file>'}): " + "; ".join(
            self.problems
        )


@dataclass
class ManifestReport:
    """What :func:`validate_manifests` found.

    Attributes
    ----------
    items : dict
        ``{split: rows checked}``.
    bad : list of BadItem
        The rows that cannot be used, in manifest order.
    converted : list of tuple
        ``(path, sample_rate, channels)`` of each readable file that is not 16 kHz mono.
    shared_ids : dict
        ``{ID: [split, ...]}`` of the IDs in the manifests of several splits (not a bad item: a run may test
        on its validation manifest; but two manifests sharing utterances leak the test into training).
    """

    items: dict = field(default_factory=dict)
    bad: list = field(default_factory=list)
    converted: list = field(default_factory=list)
    shared_ids: dict = field(default_factory=dict)

    def bad_per_split(self):
        """``{split: bad items}``, for the splits that have some."""
        counts = {}
        for item in self.bad:
            counts[item.split] = counts.get(item.split, 0) + 1
        return counts

    def listing(self):
        """Every bad item on its own line, under a count per split."""
        per_split = ", ".join(f"{split}: {n} of {self.items[split]}" for split, n in self.bad_per_split().items())
        lines = [f"{len(self.bad)} of {sum(self.items.values())} manifest items cannot be used ({per_split}):"]
        return "\n".join([*lines, *(f"  {item}" for item in self.bad)])

    def conversion_note(self, cached=False):
        """One line about the files that are resampled or down-mixed (``cached``: once), or None when there are none."""
        if not self.converted:
            return None
        path, rate, channels = self.converted[0]
        return (
            f"{len(self.converted)} audio files are not {SAMPLE_RATE // 1000} kHz mono (first: {path}, "
            f"{rate} Hz, {channels} channels); they are resampled to {SAMPLE_RATE} Hz and down-mixed "
            + ("once, as they are first read, and kept in the run's cache folder" if cached else "as they are read")
        )


def validate_manifests(
    csv_files, data_folder, label_columns=(), class_columns=(), min_duration=0.1, cache_file=None, progress=True
):
    """Checks every row of the manifests and every audio file they name.

    Arguments
    ---------
    csv_files : dict
        ``{split: path}``; the ``"train"`` manifest (when there is one) defines the known classes.
    data_folder : str
        Replaces ``$data_root`` in the ``wav`` column.
    label_columns : sequence of str
        Columns that must not be empty (class labels, transcripts).
    class_columns : sequence of str
        Label columns whose values in the other splits must also occur in training.
    min_duration : float
        Shorter files (in seconds) are reported.
    cache_file : str, optional
        JSON file remembering what each audio file holds, by path, size and modification time.
    progress : bool
        Shows a progress bar.

    Returns
    -------
    ManifestReport

    Raises
    ------
    ManifestError
        If a manifest is missing or lacks a column that every row needs (``ID``, ``wav``, a label column).

    Example
    -------
    >>> import numpy as np, soundfile
    >>> folder = getfixture("tmp_path")
    >>> soundfile.write(folder / "a.wav", np.zeros(16000), 16000)
    >>> soundfile.write(folder / "b.wav", np.zeros(800), 8000)
    >>> with open(folder / "train.csv", "w") as f:
    ...     _ = f.write("ID,wav,word\\na,$data_root/a.wav,yes\\nb,$data_root/b.wav,no\\nc,$data_root/c.wav,\\n")
    >>> report = validate_manifests({"train": folder / "train.csv"}, str(folder), ["word"], progress=False)
    >>> print(report.listing().replace(str(folder), "."))  # doctest: +NORMALIZE_WHITESPACE
    1 of 3 manifest items cannot be used (train: 1 of 3):
      ./train.csv:4: c (./c.wav): missing word label; missing file
    >>> report.converted[0][1:]
    (8000, 1)
    """
    rows = {split: _read_manifest(path, label_columns) for split, path in csv_files.items()}
    known = {c: {row[c] for _, row in rows.get("train", [])} for c in class_columns}
    cache = AudioFactsCache(cache_file)
    report = ManifestReport(items={split: len(split_rows) for split, split_rows in rows.items()})
    first_line = {}  # (manifest, ID) -> line where the manifest has it first
    with tqdm(total=sum(report.items.values()), desc="checking manifests", disable=not progress) as bar:
        for split, split_rows in rows.items():
            manifest = str(csv_files[split])
            for line, row in split_rows:
                wav = row["wav"].replace("$data_root", str(data_folder))
                seen_at = first_line.setdefault((split, row["ID"]), line)
                problems = _row_problems(row, split, label_columns, known, None if seen_at == line else seen_at)
                problems += _audio_problems(wav, cache.facts(wav), min_duration, report)
                if problems:
                    report.bad.append(BadItem(split, manifest, line, row["ID"], wav, tuple(problems)))
                bar.update()
    cache.save()
    report.shared_ids = _shared_ids(rows, csv_files)
    return report


def _shared_ids(rows, csv_files):
    splits_of = {}
    for split, split_rows in rows.items():
        for _, row in split_rows:
            splits_of.setdefault(row["ID"], []).append(split)
    different_files = len({os.path.realpath(path) for path in csv_files.values()}) == len(csv_files)
    return {i: s for i, s in splits_of.items() if len(set(s)) > 1} if different_files else {}


def _read_manifest(path, label_columns):
    """``[(line, row)]`` of a manifest, after checking that it has the columns every row needs."""
    manifest = read_manifest(path, ("ID", "wav", *label_columns), hint="check the manifest or the recipe's label keys")
    return list(zip(manifest.lines, manifest.rows))


def _row_problems(row, split, label_columns, known, seen_at):
    problems = []
    if not row["ID"]:
        problems.append("empty ID")
    elif seen_at is not None:
        problems.append(f"duplicate ID (also on line {seen_at})")
    for column in label_columns:
        label = (row[column] or "").strip()
        if not label:
            problems.append(f"missing {column} label")
        elif split != "train" and column in known and label not in known[column]:
            problems.append(f"unknown {column} label {label!r} (never in training)")
    return problems


def _audio_problems(wav, facts, min_duration, report):
    if "error" in facts:
        return [facts["error"]]
    if (facts["rate"], facts["channels"]) != (SAMPLE_RATE, 1):
        report.converted.append((wav, facts["rate"], facts["channels"]))
    if facts["frames"] == 0:
        return ["no audio samples (0 frames)"]
    problems = []
    if facts["frames"] / facts["rate"] < min_duration:
        problems.append(f"too short: {facts['frames'] / facts['rate']:.3f} s < min_duration {min_duration} s")
    if not facts["finite"]:
        problems.append("NaN or inf samples")
    return problems


def write_manifests_without(report, csv_files, folder):
    """Writes each manifest without its bad items to ``folder/<split>.csv``; returns ``{split: path}``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> with open(folder / "test.csv", "w") as f:
    ...     _ = f.write("ID,wav\\na,x.wav\\nb,y.wav\\n")
    >>> bad = BadItem("test", str(folder / "test.csv"), 3, "b", "y.wav", ("missing file",))
    >>> report = ManifestReport({"test": 2}, [bad])
    >>> path = write_manifests_without(report, {"test": folder / "test.csv"}, folder / "kept")["test"]
    >>> print(open(path).read().strip())
    ID,wav
    a,x.wav
    """
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for split, source in csv_files.items():
        bad_lines = {item.line for item in report.bad if item.split == split}
        paths[split] = os.path.join(folder, f"{split}.csv")
        manifest = read_manifest(source)
        with open(paths[split], "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=manifest.columns)
            writer.writeheader()
            writer.writerows(row for line, row in zip(manifest.lines, manifest.rows) if line not in bad_lines)
    return paths
