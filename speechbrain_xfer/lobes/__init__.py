"""Task heads: pooling over time and classifiers."""

from speechbrain_xfer.lobes.ctc import CTCHead
from speechbrain_xfer.lobes.heads import ClassifierHead, ClassifierHeads
from speechbrain_xfer.lobes.inference import (
    CTCModel,
    PassThrough,
    PooledClassifier,
    UtteranceEmbedder,
    WaveformEncoder,
    encode_waveforms,
)
from speechbrain_xfer.lobes.pooling import AttentionPooling, MeanMaxPooling, MeanPooling, length_mask

__all__ = [
    "AttentionPooling",
    "CTCHead",
    "CTCModel",
    "ClassifierHead",
    "ClassifierHeads",
    "MeanMaxPooling",
    "MeanPooling",
    "PassThrough",
    "PooledClassifier",
    "UtteranceEmbedder",
    "WaveformEncoder",
    "encode_waveforms",
    "length_mask",
]
