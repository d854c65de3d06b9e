#!/usr/bin/env python3
"""Source stage 2 for keyword spotting: the CTC-pretrained encoder, fine-tuned on the source words, then exported.

    python train_words.py hparams/words_conv.yaml --data_folder results/demo/data/words/source \
        --pretrained_source results/demo/pretrain/encoder

Sentences teach the encoder speech sounds; the source words (35, none of
them a target word) teach it to tell whole words apart. The export
(``export_folder``) is a folder that SpeechBrain's ``EncoderClassifier``
loads, with ``encoder.ckpt`` (the encoder alone) and ``ewc.ckpt`` (the
source task's Fisher); the KWS recipes load it with ``--pretrained_source``.
"""

import sys

import speechbrain as sb

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment
from speechbrain_xfer.hub.source_export import export_source

if __name__ == "__main__":
    brain, datasets = run_experiment(UtteranceClassifierBrain, prepare_classification, sys.argv[1:])
    if sb.utils.distributed.if_main_process():
        export_source(brain, datasets["train"])
