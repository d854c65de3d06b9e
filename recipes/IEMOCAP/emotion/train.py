#!/usr/bin/env python3
"""Emotion recognition on IEMOCAP (4 classes, leave one session out) with a pretrained wav2vec 2.0 encoder.

    python train.py hparams/wav2vec2_l2sp.yaml --data_folder /data/IEMOCAP_full_release --test_session 5

The 5-fold protocol runs --test_session 1 to 5 (each writes to its own session<k> folder) and averages the
accuracies.
"""

import sys

import speechbrain as sb
from iemocap_prepare import prepare_iemocap

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests (once, on the main process), then builds the datasets from them."""
    sb.utils.distributed.run_on_main(
        prepare_iemocap,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["manifest_folder"],
            "test_session": hparams["test_session"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    return prepare_classification(hparams)


if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, dataio_prepare, sys.argv[1:])
