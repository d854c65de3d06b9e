"""Regularizers for fine-tuning a pretrained encoder, in plain torch.

Each is an ``nn.Module`` whose forward returns a scalar to add to the task loss:
:class:`L2SP` and :class:`EWC` pull the weights towards the pretrained ones,
:class:`DELTA` the features, and :class:`BSS` shrinks the weakest feature directions.
"""

from speechbrain_xfer.regularization.bss import BSS
from speechbrain_xfer.regularization.delta import DELTA
from speechbrain_xfer.regularization.ewc import EWC
from speechbrain_xfer.regularization.l2sp import L2SP

__all__ = ["BSS", "DELTA", "EWC", "L2SP"]
