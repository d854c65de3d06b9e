#!/usr/bin/env python3
"""Keyword spotting on SynthSpeech: a (pretrained) encoder, a pooling classifier head.

    python train.py hparams/l2sp.yaml --data_folder results/demo/data/words/target \
        --pretrained_source results/demo/pretrain/encoder

The method (scratch, finetune, l2sp, frozen, lora, ...) is the YAML file.
"""

import sys

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment

if __name__ == "__main__":
    run_experiment(UtteranceClassifierBrain, prepare_classification, sys.argv[1:])
