"""Regularizers for fine-tuning a pretrained encoder, in plain torch.

Each is an ``nn.Module`` whose forward returns a scalar to add to the task loss:
:class:`L2SP` and :class:`EWC` pull the weights towards the pretrained ones,
:class:`DELTA` the features, :class:`BSS` shrinks the weakest feature directions, and
:class:`FrameDistillation` pulls per-frame posteriors towards a frozen teacher's.
"""

from speechbrain_xfer.regularization.bss import BSS
from speechbrain_xfer.regularization.delta import DELTA
from speechbrain_xfer.regularization.distillation import FrameDistillation
from speechbrain_xfer.regularization.ewc import EWC
from speechbrain_xfer.regularization.l2sp import L2SP

__all__ = ["BSS", "DELTA", "EWC", "FrameDistillation", "L2SP"]
