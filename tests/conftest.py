"""Shared fixtures: a tiny SynthSpeech corpus, built once per test session."""

import collections
import os

import pytest

from speechbrain_xfer.synthspeech.synth import TASKS, SynthOptions, read_manifest, synthesize_task, write_manifest

TINY = SynthOptions(seed=7, num_speakers=8, scale=0.25)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Root folder of a tiny corpus of every task, and its reports."""
    root = tmp_path_factory.mktemp("synth")
    reports = {}
    for task in TASKS:
        reports.update(synthesize_task(task, str(root), TINY, jobs=2, progress=False))
    return root, reports


@pytest.fixture(scope="session")
def small_manifest():
    """Writes the first ``per_class`` training rows of each class to ``out_csv``."""

    def write(folder, out_csv, per_class, key):
        rows = read_manifest(os.path.join(folder, "train.csv"))
        taken, counts = [], collections.Counter()
        for row in rows:
            if counts[row[key]] < per_class:
                taken.append(row)
                counts[row[key]] += 1
        write_manifest(out_csv, taken)
        return len(taken)

    return write


def real_data_root():
    """The folder of the real recordings (FSDD, RAVDESS) that the tests read: ``$SBX_REAL_DATA``, else the
    ``shared/data`` folder beside the repository, else ``/work/shared/data``."""
    if os.environ.get("SBX_REAL_DATA"):
        return os.environ["SBX_REAL_DATA"]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for parent in (os.path.dirname(repo), "/work"):
        folder = os.path.join(parent, "shared", "data")
        if os.path.isdir(folder):
            return folder
    return None


def _real_data(relative):
    """The real data folder ``relative`` to :func:`real_data_root`.

    Missing on a user's machine, the tests that need it are skipped; under CI (``CI=true``) they fail, so that
    they cannot be skipped unseen there.
    """
    root = real_data_root()
    folder = os.path.join(root, relative) if root else None
    if folder and os.path.isdir(folder):
        return folder
    reason = f"no real recordings: set SBX_REAL_DATA to a folder holding {relative}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fsdd_recordings():
    """The ``recordings/`` folder of the Free Spoken Digit Dataset (CC BY-SA 4.0)."""
    return _real_data(os.path.join("fsdd", "recordings"))


@pytest.fixture(scope="session")
def ravdess_folder():
    """The speech part of RAVDESS (``Actor_01/`` ... ``Actor_24/``, 16 kHz; CC BY-NC-SA 4.0)."""
    return _real_data("ravdess")


def _max_difference(a, b, where="state"):
    """Largest absolute difference between two nested states (tensors, dicts, lists); their structure must match."""
    import torch

    if isinstance(a, torch.Tensor):
        return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        return max((_max_difference(a[k], b[k], f"{where}.{k}") for k in a), default=0.0)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        return max((_max_difference(x, y, where) for x, y in zip(a, b)), default=0.0)
    assert a == b, f"{where}: {a!r} != {b!r}"
    return 0.0


def _newest_checkpoint_tensors(run_folder):
    """Every tensor file of a run's newest checkpoint: weights, optimizer states, L2-SP anchors."""
    import zipfile
    from pathlib import Path

    import torch

    folders = list((Path(run_folder) / "save").glob("CKPT+*"))
    assert folders, f"no checkpoint in {run_folder}"
    newest = max(folders, key=lambda f: (f / "CKPT.yaml").stat().st_mtime)
    return {p.stem: torch.load(p, weights_only=True) for p in newest.glob("*.ckpt") if zipfile.is_zipfile(p)}


@pytest.fixture(scope="session")
def max_difference():
    """``difference(a, b)``: the largest absolute difference between two nested states of the same structure."""
    return _max_difference


@pytest.fixture(scope="session")
def checkpoint_difference():
    """``difference(run_a, run_b)``: the largest difference between the newest checkpoints of two run folders."""
    return lambda a, b: _max_difference(_newest_checkpoint_tensors(a), _newest_checkpoint_tensors(b))
