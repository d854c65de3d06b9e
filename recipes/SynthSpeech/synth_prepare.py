#!/usr/bin/env python3
"""Prepares the SynthSpeech corpus for the recipes in this folder.

Run directly::

    python recipes/SynthSpeech/synth_prepare.py --task all --out data/synth

or from a recipe's ``train.py`` through ``prepare_synthspeech``. Work already
done with the same options is skipped.
"""

import os
import sys

from speechbrain_xfer.synthspeech.synth import SynthOptions, synthesize_task


def prepare_synthspeech(data_folder, task, seed=1234, num_speakers=60, scale=1.0, jobs=None):
    """Synthesizes ``task`` under ``data_folder`` unless it is already there.

    Arguments
    ---------
    data_folder : str
        Corpus root; the task's subset folders are created below it.
    task : str
        One of ``words``, ``intent``, ``emotion``, ``asr``.
    seed, num_speakers, scale : int, int, float
        Corpus options (see ``speechbrain_xfer.synthspeech.synth.SynthOptions``).
    jobs : int, optional
        Worker processes; all cores by default.

    Returns
    -------
    dict
        The synthesis report of each subset folder.
    """
    options = SynthOptions(seed=seed, num_speakers=num_speakers, scale=scale)
    return synthesize_task(task, data_folder, options, jobs=jobs or os.cpu_count() or 1)


if __name__ == "__main__":
    from speechbrain_xfer.cli import main

    sys.exit(main(["synth", *sys.argv[1:]]))
