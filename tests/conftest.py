"""Shared fixtures: a tiny SynthSpeech corpus, built once per test session."""

import pytest

from speechbrain_xfer.data.synth import TASKS, SynthOptions, synthesize_task

TINY = SynthOptions(seed=7, num_speakers=8, scale=0.25)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Root folder of a tiny corpus of every task, and its reports."""
    root = tmp_path_factory.mktemp("synth")
    reports = {}
    for task in TASKS:
        reports.update(synthesize_task(task, str(root), TINY, jobs=2, progress=False))
    return root, reports
