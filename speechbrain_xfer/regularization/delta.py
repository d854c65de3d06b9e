"""DELTA's feature-map term: keep the fine-tuned features close to the pretrained ones."""

import copy

import torch
from torch import nn


class DELTA(nn.Module):
    """The feature-map regularizer of Li et al., "DELTA: Deep Learning Transfer
    using Feature Map with Attention for Convolutional Networks", ICLR 2019,
    without the per-channel attention weights:

    .. math::

        R = \\alpha \\cdot \\operatorname{mean}_{(b, t)\\ \\text{valid}}
            \\lVert f(x)_{b,t} - f^0(x)_{b,t} \\rVert_2^2

    where :math:`f` is the encoder being fine-tuned and :math:`f^0` a frozen
    copy of the pretrained encoder. The squared distance is summed over the
    feature dimension and averaged over the valid (non-padding) frames.

    The frozen copy is a deep copy taken at construction, refreshed by
    :meth:`capture` (for weights loaded after construction, e.g. by a
    Pretrainer), and registered as the submodule ``reference``: it follows
    ``.to()`` and is saved in ``state_dict()``, so a resumed run keeps the
    original pretrained encoder.
    Its parameters have ``requires_grad=False`` (an optimizer built from this
    module's ``parameters()`` never updates them) and it stays in eval mode
    even when a parent module calls ``.train()``, so its dropout and
    normalization statistics do not change.

    Arguments
    ---------
    reference : torch.nn.Module
        The pretrained encoder, copied before fine-tuning starts.
    alpha : float
        Strength of the penalty.
    pass_lengths : bool
        Call ``reference(inputs, lengths)`` (SpeechBrain encoders, which mask
        padding with the lengths) rather than ``reference(inputs)``.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> encoder = nn.Linear(4, 3)
    >>> reg = DELTA(encoder, alpha=0.5, pass_lengths=False)
    >>> x = torch.randn(2, 5, 4)
    >>> reg(encoder(x), x).item()
    0.0
    >>> with torch.no_grad():
    ...     encoder.bias += 1.0
    >>> round(reg(encoder(x), x, lengths=torch.tensor([1.0, 0.6])).item(), 6)  # 0.5 * 3 * 1.0**2
    1.5
    >>> reg.capture()  # the current weights become the reference
    >>> reg(encoder(x), x).item()
    0.0
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ("features", "encoder_input", "lens")

    def __init__(self, reference, alpha=0.01, pass_lengths=True):
        super().__init__()
        self.alpha = alpha
        self.pass_lengths = pass_lengths
        # A plain list keeps the live encoder out of this module's submodules.
        self._source = [reference]
        self.reference = copy.deepcopy(reference).requires_grad_(False).eval()

    @torch.no_grad()
    def capture(self):
        """Copies the live encoder's current weights into the frozen reference."""
        self.reference.load_state_dict(self._source[0].state_dict())

    def train(self, mode=True):
        """Sets the mode like ``nn.Module.train``, but keeps ``reference`` in eval mode."""
        super().train(mode)
        self.reference.eval()
        return self

    def forward(self, features, inputs=None, lengths=None, reference_features=None):
        """Computes the penalty.

        Arguments
        ---------
        features : torch.Tensor
            Output of the fine-tuned encoder, ``(batch, time, dim)`` or ``(batch, dim)``.
        inputs : torch.Tensor, optional
            Encoder input; ``reference(inputs)`` is run without gradient.
            Needed unless ``reference_features`` is given.
        lengths : torch.Tensor, optional
            SpeechBrain relative lengths in ``[0, 1]``, shape ``(batch,)``; frames
            past ``round(length * time)`` are padding and ignored.
        reference_features : torch.Tensor, optional
            Precomputed output of the frozen encoder, same shape as ``features``
            (for encoders that take more than one input).

        Returns
        -------
        torch.Tensor
            The scalar penalty.
        """
        if reference_features is None:
            if inputs is None:
                raise ValueError("DELTA needs either inputs or reference_features")
            with torch.no_grad():
                if self.pass_lengths and lengths is not None:
                    reference_features = self.reference(inputs, lengths)
                else:
                    reference_features = self.reference(inputs)
        if reference_features.shape != features.shape:
            raise ValueError(f"feature shapes differ: {tuple(features.shape)} vs {tuple(reference_features.shape)}")
        distance = (features - reference_features.detach()).square().sum(dim=-1)
        if lengths is None or distance.dim() == 1:
            return self.alpha * distance.mean()
        mask = _frame_mask(lengths, distance.shape[1])
        # where, not multiply: padding may hold inf or NaN.
        return self.alpha * torch.where(mask, distance, 0.0).sum() / mask.sum().clamp(min=1)


def _frame_mask(lengths, time):
    """(batch, time) boolean mask of the frames inside each relative length."""
    frames = torch.round(lengths * time)
    return torch.arange(time, device=lengths.device) < frames.unsqueeze(1)
