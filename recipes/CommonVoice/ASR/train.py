#!/usr/bin/env python3
"""Speech recognition on one Common Voice language: a pretrained wav2vec 2.0 encoder and a CTC head over
SentencePiece tokens, fine-tuned with L2-SP.

    python train.py hparams/wav2vec2_ctc_l2sp.yaml --data_folder /data/cv-corpus-6.1-2020-12-11/rw

The test WER and CER are in `<output_folder>/summary.json`, the per-utterance errors in `wer.txt`.
"""

import sys

import speechbrain as sb
from common_voice_prepare import prepare_common_voice

from speechbrain_xfer.brains import CTCBrain
from speechbrain_xfer.data.dataio import asr_datasets
from speechbrain_xfer.experiment import run_experiment


def dataio_prepare(hparams):
    """Writes the manifests and 16 kHz clips (once, on the main process), then the tokenizer and the datasets."""
    sb.utils.distributed.run_on_main(
        prepare_common_voice,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["manifest_folder"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    csvs = {split: hparams[f"{split}_csv"] for split in ("train", "valid", "test")}
    datasets, hparams["tokenizer"] = asr_datasets(
        hparams["data_folder"],
        csvs,
        hparams["save_folder"],
        tokenizer="sentencepiece",
        vocab_size=hparams["vocab_size"],
        model_type=hparams["token_type"],
    )
    return datasets


if __name__ == "__main__":
    run_experiment(CTCBrain, dataio_prepare, sys.argv[1:])
