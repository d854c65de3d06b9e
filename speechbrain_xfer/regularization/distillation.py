"""Frame-level knowledge distillation: the student's per-frame posteriors pulled towards a frozen teacher's."""

import torch
import torch.nn.functional as F
from torch import nn


class FrameDistillation(nn.Module):
    """The distillation term of Hinton et al., "Distilling the Knowledge in a Neural Network", 2015, per frame,
    as Takashima et al. apply it to CTC models ("An Investigation of a Knowledge Distillation Method for CTC
    Acoustic Models", ICASSP 2018):

    .. math::

        R = \\alpha \\cdot \\operatorname{mean}_{(b, t)\\ \\text{valid}}
            \\operatorname{KL}\\big(p^T_{b, \\tau(t)} \\,\\Vert\\, p^S_{b, t}\\big)

    where :math:`p^S_{b,t}` is the student's token distribution at frame :math:`t` and :math:`p^T` a frozen
    teacher's. The two may have other frame rates (a teacher with 40 ms frames, a student with 20 ms ones):
    :math:`\\tau(t)` is the teacher frame that covers the middle of student frame :math:`t`. Both must share
    the token set, blank included. The frame-level targets tell the student where each token is, which a
    model trained from random weights with CTC alone must discover; transformers are slow to do so.

    The teacher is registered as the submodule ``teacher`` (it follows ``.to()`` and checkpoints), has
    ``requires_grad=False`` and stays in eval mode when a parent module calls ``.train()``.

    Arguments
    ---------
    teacher : torch.nn.Module
        Called as ``teacher(inputs, lengths)``; returns ``(batch, frames, tokens)`` log-probabilities.
    alpha : float
        Strength of the term.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> teacher = lambda x, lens: torch.log_softmax(x[:, ::2], dim=-1)  # half the student's frame rate
    >>> reg = FrameDistillation(teacher, alpha=1.0)
    >>> x = torch.randn(2, 8, 5)
    >>> student = torch.log_softmax(x[:, ::2].repeat_interleave(2, dim=1), dim=-1)  # the teacher's, upsampled
    >>> round(reg(student, x, torch.tensor([1.0, 0.5])).item(), 6)
    0.0
    >>> reg(torch.log_softmax(torch.zeros(2, 8, 5), dim=-1), x).item() > 0
    True
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ("log_probs", "encoder_input", "lens")

    def __init__(self, teacher, alpha=1.0):
        super().__init__()
        self.alpha = alpha
        if isinstance(teacher, nn.Module):
            teacher.requires_grad_(False).eval()
        self.teacher = teacher

    def train(self, mode=True):
        """Sets the mode like ``nn.Module.train``, but keeps the teacher in eval mode."""
        super().train(mode)
        if isinstance(self.teacher, nn.Module):
            self.teacher.eval()
        return self

    def forward(self, log_probs, inputs, lengths=None):
        """Computes the term.

        Arguments
        ---------
        log_probs : torch.Tensor
            The student's ``(batch, frames, tokens)`` log-probabilities.
        inputs : torch.Tensor
            The student's input (e.g. waveforms), which the teacher takes too.
        lengths : torch.Tensor, optional
            SpeechBrain relative lengths of ``inputs`` (and of both outputs), shape ``(batch,)``.

        Returns
        -------
        torch.Tensor
            The scalar term.
        """
        batch, frames, tokens = log_probs.shape
        if lengths is None:
            lengths = torch.ones(batch, device=log_probs.device)
        with torch.no_grad():
            target = self.teacher(inputs, lengths)
        if target.shape[0] != batch or target.shape[-1] != tokens:
            raise ValueError(
                f"the teacher gives {tuple(target.shape)} log-probabilities for a student's "
                f"{tuple(log_probs.shape)}: they must share the batch and the token set"
            )
        # The teacher frame covering the middle of each student frame.
        index = ((torch.arange(frames, device=log_probs.device) + 0.5) * target.shape[1] / frames).long()
        target = target[:, index.clamp(max=target.shape[1] - 1)].to(log_probs.dtype)
        divergence = F.kl_div(log_probs, target, log_target=True, reduction="none").sum(dim=-1)
        mask = torch.arange(frames, device=log_probs.device) < torch.round(lengths * frames).unsqueeze(1)
        # where, not multiply: padding may hold inf or NaN.
        return self.alpha * torch.where(mask, divergence, 0.0).sum() / mask.sum().clamp(min=1)
