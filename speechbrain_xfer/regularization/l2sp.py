"""L2-SP: weight decay towards the pretrained weights instead of towards zero."""

import torch
from torch import nn

from speechbrain_xfer.regularization._params import register_copies, sum_of_squares, tracked_params, zero_like_first


class L2SP(nn.Module):
    """The L2-SP penalty of Li et al., "Explicit Inductive Bias for Transfer
    Learning with Convolutional Networks", ICML 2018.

    .. math::

        R(w) = \\frac{\\alpha}{2} \\lVert w_S - w_S^0 \\rVert_2^2
             + \\frac{\\beta}{2} \\lVert w_H \\rVert_2^2

    where :math:`S` are the parameters of ``source`` (the pretrained part),
    :math:`w_S^0` their values at construction (or at the last
    :meth:`capture`), and :math:`H` the parameters of ``head`` (new layers,
    plain weight decay). The gradient of the source part is
    :math:`\\alpha (w - w^0)`.

    Only parameters with ``requires_grad=True`` at call time count, so frozen
    layers cost nothing and a layer unfrozen later starts counting from then.
    Parameters shared by ``source`` and ``head`` are counted in the head only.

    The anchors :math:`w^0` are registered buffers: they follow ``.to()`` and
    are saved in and restored from ``state_dict()``. ``source`` and ``head``
    are referenced, not registered: ``parameters()`` is empty and the model's
    weights are not duplicated in this module's ``state_dict()``. On resume
    from a checkpoint, build the regularizer on the model, then load its saved
    ``state_dict``: the loaded anchors (the original pretrained weights) replace
    the resumed, fine-tuned weights that construction captured.

    Arguments
    ---------
    source : torch.nn.Module
        The pretrained part, pulled towards its weights at capture time.
    head : torch.nn.Module, optional
        The newly initialized part, pulled towards zero.
    alpha : float
        Strength of the pull towards the pretrained weights.
    beta : float
        Weight decay of the head.

    Attributes
    ----------
    last_terms : dict
        ``{"source": ..., "head": ...}``, the two terms of the last call as
        detached scalar tensors (no host sync; call ``float()`` to log them).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> encoder, head = nn.Linear(3, 3), nn.Linear(3, 2)
    >>> reg = L2SP(encoder, head, alpha=0.1, beta=0.0)
    >>> reg().item()
    0.0
    >>> with torch.no_grad():
    ...     encoder.bias += 1.0
    >>> round(reg().item(), 6)  # 0.1 / 2 * 3 * 1.0**2
    0.15
    >>> list(reg.parameters())
    []
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ()

    def __init__(self, source, head=None, alpha=0.01, beta=0.01):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self._source = tracked_params(source, exclude=head)
        self._head = [] if head is None else list(head.named_parameters())
        self._anchor_names = register_copies(self, "anchor", self._source)
        self.last_terms = {}

    @torch.no_grad()
    def capture(self):
        """Takes the current weights of ``source`` as the new anchor, in place."""
        for (_, param), name in zip(self._source, self._anchor_names, strict=True):
            self._buffers[name].copy_(param)

    def _trainable_with_anchors(self):
        # Anchors are looked up by name every call: `.to()` replaces the buffer objects.
        named = zip(self._source, self._anchor_names, strict=True)
        return [(p, self._buffers[name]) for (_, p), name in named if p.requires_grad]

    def forward(self):
        """Computes the penalty.

        Returns
        -------
        torch.Tensor
            The scalar :math:`R(w)`, differentiable w.r.t. the trainable weights.
        """
        pairs = self._trainable_with_anchors()
        head = [p for _, p in self._head if p.requires_grad]
        zero = zero_like_first(self._source or self._head)
        source_term = zero
        if pairs:
            params, anchors = zip(*pairs, strict=True)
            source_term = self.alpha / 2 * sum_of_squares(torch._foreach_sub(params, anchors))
        head_term = self.beta / 2 * sum_of_squares(head) if head else zero
        self.last_terms = {"source": source_term.detach(), "head": head_term.detach()}
        return source_term + head_term
