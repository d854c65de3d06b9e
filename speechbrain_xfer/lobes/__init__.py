"""Task heads: pooling over time and classifiers."""

from speechbrain_xfer.lobes.heads import ClassifierHead
from speechbrain_xfer.lobes.pooling import AttentionPooling, MeanMaxPooling, MeanPooling, length_mask

__all__ = ["AttentionPooling", "ClassifierHead", "MeanMaxPooling", "MeanPooling", "length_mask"]
