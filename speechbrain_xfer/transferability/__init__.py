"""Transferability estimators: scores of frozen features for a target task's labels, predicting which
pretrained encoder (and which of its layers) fine-tunes best, in seconds instead of hours. One per file,
plain numpy, the paper and the formula in each docstring."""

from speechbrain_xfer.transferability.hscore import hscore
from speechbrain_xfer.transferability.logme import logme

ESTIMATORS = {"logme": logme, "hscore": hscore}
"""The estimators ``sbx rank`` computes, by name."""

__all__ = ["ESTIMATORS", "hscore", "logme"]
