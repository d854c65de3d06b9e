#!/usr/bin/env python3
"""Spoken digits of real speakers (FSDD) with a (pretrained) encoder and a pooling classifier head.

    python train.py hparams/finetune.yaml --data_folder /data/free-spoken-digit-dataset \
        --pretrained_source results/demo/pretrain/words_bandlimit/encoder

The method (scratch, finetune, l2sp, frozen, lora, hf_*) is the YAML file. ``--data_folder`` is the dataset's
folder (its manifests are written to ``manifest_folder`` first) or a folder ``fsdd_prepare.py`` wrote.
"""

import os
import sys

import speechbrain as sb
from fsdd_prepare import prepare_fsdd

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests of a download (once, on the main process), then builds the datasets."""
    if os.path.isdir(os.path.join(hparams["data_folder"], "recordings")):
        sb.utils.distributed.run_on_main(
            prepare_fsdd,
            kwargs={
                "data_folder": hparams["data_folder"],
                "save_folder": hparams["manifest_folder"],
                "valid_speakers": hparams["valid_speakers"],
                "test_speakers": hparams["test_speakers"],
            },
        )
    return prepare_classification(hparams)


if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])
