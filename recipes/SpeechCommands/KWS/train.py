#!/usr/bin/env python3
"""Keyword spotting on Google Speech Commands v2 with a pretrained wav2vec 2.0 encoder.

    python train.py hparams/wav2vec2_l2sp.yaml --data_folder /data/speech_commands_v0.02

The method (finetune, l2sp) is the YAML file; the 12- or 35-class setup is `setup`.
"""

import sys

import speechbrain as sb
from speech_commands_prepare import prepare_speech_commands

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests (once, on the main process), then builds the datasets from them."""
    sb.utils.distributed.run_on_main(
        prepare_speech_commands,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["manifest_folder"],
            "setup": hparams["setup"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    return prepare_classification(hparams)


if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])
