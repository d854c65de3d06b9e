"""Regularizers for fine-tuning a pretrained encoder, in plain torch.

Each is an ``nn.Module`` whose forward returns a scalar to add to the task loss:
:class:`L2SP` and :class:`EWC` pull the weights towards the pretrained ones,
:class:`DELTA` the features, :class:`BSS` shrinks the weakest feature directions, and
:class:`FrameDistillation` pulls per-frame posteriors towards a frozen teacher's.
:class:`AnchoredAdamW` applies decoupled L2-SP's pull in its own pass over the weights.
"""

from speechbrain_xfer.regularization.anchored_adamw import AnchoredAdamW
from speechbrain_xfer.regularization.bss import BSS
from speechbrain_xfer.regularization.delta import DELTA
from speechbrain_xfer.regularization.distillation import FrameDistillation
from speechbrain_xfer.regularization.ewc import EWC
from speechbrain_xfer.regularization.l2sp import L2SP

__all__ = ["AnchoredAdamW", "BSS", "DELTA", "EWC", "FrameDistillation", "L2SP"]
