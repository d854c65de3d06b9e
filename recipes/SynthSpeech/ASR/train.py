#!/usr/bin/env python3
"""Speech recognition on the small SynthSpeech target domain (assistant commands): CTC over characters.

    python train.py hparams/l2sp.yaml --data_folder results/demo/data/asr/target \
        --pretrained_source results/demo/pretrain/encoder

The method (scratch, finetune, l2sp, frozen, lora) is the YAML file. The transfer methods start
from the pretraining's CTC head too, with its character set (``tokenizer_source``): the target
sentences are written with the same alphabet.
"""

import sys

from speechbrain_xfer.brains import CTCBrain
from speechbrain_xfer.data.dataio import asr_datasets
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    csvs = {split: hparams[f"{split}_csv"] for split in ("train", "valid", "test")}
    # The transfer YAMLs name tokenizer_source, the pretrained model whose CTC head they fine-tune;
    # scratch builds its character set from the alphabet and the training transcripts.
    datasets, hparams["tokenizer"] = asr_datasets(
        hparams["data_folder"],
        csvs,
        hparams["save_folder"],
        tokenizer="char",
        alphabet=hparams.get("alphabet", ""),
        tokenizer_source=hparams.get("tokenizer_source"),
    )
    return datasets


if __name__ == "__main__":
    run_experiment(CTCBrain, dataio_prepare, sys.argv[1:])
