#!/usr/bin/env python3
"""Spoken intent on Fluent Speech Commands with a pretrained wav2vec 2.0 encoder: one attention-pooling head
per slot (action, object, location); an utterance counts as right when every slot is.

    python train.py hparams/wav2vec2_l2sp.yaml --data_folder /data/fluent_speech_commands_dataset
"""

import sys

import speechbrain as sb
from fluent_speech_commands_prepare import prepare_fluent_speech_commands

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests (once, on the main process), then builds the datasets from them."""
    sb.utils.distributed.run_on_main(
        prepare_fluent_speech_commands,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["manifest_folder"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    return prepare_classification(hparams)


if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])
