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
