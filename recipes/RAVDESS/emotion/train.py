#!/usr/bin/env python3
"""Emotion of real acted speech (RAVDESS) with a (pretrained) encoder and a pooling classifier head.

    python train.py hparams/finetune.yaml --data_folder /data/Audio_Speech_Actors_01-24 \
        --pretrained_source results/demo/pretrain/encoder

The method (scratch, finetune, l2sp, frozen, lora, hf_*) is the YAML file; ``--emotions 4`` keeps neutral, happy,
sad and angry. ``--data_folder`` is the release's folder (its manifests are written to ``manifest_folder``
first) or a folder ``ravdess_prepare.py`` wrote.
"""

import glob
import os
import sys

import speechbrain as sb
from ravdess_prepare import prepare_ravdess

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests of a download (once, on the main process), then builds the datasets."""
    if glob.glob(os.path.join(hparams["data_folder"], "Actor_*")):
        sb.utils.distributed.run_on_main(
            prepare_ravdess,
            kwargs={
                "data_folder": hparams["data_folder"],
                "save_folder": hparams["manifest_folder"],
                "emotions": hparams["emotions"],
                "valid_actors": hparams["valid_actors"],
                "test_actors": hparams["test_actors"],
            },
        )
    return prepare_classification(hparams)


if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])
