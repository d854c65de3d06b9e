"""Batch spectral shrinkage: suppress the weakest directions of the batch features."""

import torch
from torch import nn


class BSS(nn.Module):
    """The batch spectral shrinkage penalty of Chen et al., "Catastrophic
    Forgetting Meets Negative Transfer: Batch Spectral Shrinkage for Safe
    Transfer Learning", NeurIPS 2019.

    .. math::

        R(F) = \\eta \\sum_{i=1}^{k} \\sigma_{-i}^2

    where :math:`\\sigma_{-1} \\le \\sigma_{-2} \\le \\dots` are the smallest
    singular values of the ``(batch, dim)`` feature matrix :math:`F`. When
    ``k`` exceeds ``min(batch, dim)`` (e.g. a short last batch) it is clipped
    to that, so every singular value is penalized rather than the run failing.

    Arguments
    ---------
    k : int
        Number of smallest singular values to penalize, at least 1.
    eta : float
        Strength of the penalty.

    Example
    -------
    >>> reg = BSS(k=1, eta=0.5)
    >>> features = torch.tensor([[3.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    >>> float(reg(features))  # 0.5 * 2.0**2
    2.0
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ("pooled",)

    def __init__(self, k=1, eta=0.001):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.eta = eta

    def forward(self, features):
        """Computes the penalty.

        Arguments
        ---------
        features : torch.Tensor
            The batch feature matrix, ``(batch, dim)``.

        Returns
        -------
        torch.Tensor
            The scalar penalty.
        """
        if features.dim() != 2:
            raise ValueError(f"BSS expects (batch, dim) features, got shape {tuple(features.shape)}")
        # SVD is not implemented for half precision; run it in float32 under autocast.
        if features.dtype not in (torch.float32, torch.float64):
            features = features.float()
        sigma = torch.linalg.svdvals(features)  # descending
        return self.eta * sigma[-self.k :].square().sum()
