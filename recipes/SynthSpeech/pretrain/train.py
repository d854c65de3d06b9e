#!/usr/bin/env python3
"""Pretrains a source encoder on SynthSpeech with CTC, then exports it.

    python train.py hparams/ctc_conv.yaml --data_folder results/demo/data/asr/source
    python train.py hparams/ctc_whisper.yaml --data_folder results/demo/data/asr/source \
        --pretrained_source results/demo/pretrain/encoder

The export (``export_folder``, written by ``sbx export``'s code) is a folder
that SpeechBrain's ``EncoderASR`` loads, with ``encoder.ckpt`` (the encoder
alone), ``ctc_head.ckpt`` and ``tokenizer.ckpt``; here it also holds
``ewc.ckpt``: the anchors and the diagonal Fisher of the source task for EWC
(the mean squared gradient of the CTC loss over ``fisher_batches`` training
batches, scaled so that its largest entry is 1). The task recipes load it
with ``--pretrained_source <export_folder>``, as they would a hub model.
A hub-format encoder (``ctc_whisper.yaml``: an ``HFEncoder``) is exported as
the folder ``save_pretrained`` writes instead of ``encoder.ckpt``, with the
CTC head, the character set and ``ewc.ckpt`` beside it.
"""

import sys

import speechbrain as sb

from speechbrain_xfer.brains import CTCBrain
from speechbrain_xfer.data.dataio import asr_datasets
from speechbrain_xfer.experiment import run_experiment
from speechbrain_xfer.hub.source_export import export_source


def dataio_prepare(hparams):
    csvs = {split: hparams[f"{split}_csv"] for split in ("train", "valid", "test")}
    datasets, hparams["tokenizer"] = asr_datasets(
        hparams["data_folder"],
        csvs,
        hparams["save_folder"],
        tokenizer=hparams["tokenizer_kind"],
        alphabet=hparams["alphabet"],
        # A distilled stage takes its teacher's character set, in its order (the two share the CTC tokens).
        tokenizer_source=hparams.get("tokenizer_source"),
    )
    return datasets


if __name__ == "__main__":
    brain, datasets = run_experiment(CTCBrain, dataio_prepare, sys.argv[1:])
    if sb.utils.distributed.if_main_process():
        export_source(brain, datasets["train"])
