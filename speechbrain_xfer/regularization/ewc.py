"""Elastic weight consolidation: a Fisher-weighted pull towards the pretrained weights."""

import itertools

import torch
from torch import nn

from speechbrain_xfer.regularization._params import register_copies, tracked_params, zero_like_first


class EWC(nn.Module):
    """The elastic weight consolidation penalty of Kirkpatrick et al.,
    "Overcoming catastrophic forgetting in neural networks", PNAS 2017.

    .. math::

        R(w) = \\frac{\\lambda}{2} \\sum_i F_i (w_i - w_i^0)^2

    with :math:`w^0` the weights of ``source`` at construction (or at the last
    :meth:`capture`) and :math:`F` a diagonal Fisher information estimated by
    :meth:`estimate_fisher`. The gradient is :math:`\\lambda F (w - w^0)`.
    :math:`F` starts at zero, so the penalty is zero until it is estimated
    (or loaded).

    Only parameters with ``requires_grad=True`` at call time count. Both
    :math:`w^0` and :math:`F` are registered buffers (they follow ``.to()`` and
    ``state_dict()``); ``source`` is referenced, not registered, so
    ``parameters()`` is empty. On resume, loading this module's saved
    ``state_dict`` restores the original anchor and Fisher.

    Arguments
    ---------
    source : torch.nn.Module
        The pretrained model (or part) to consolidate.
    lam : float
        Strength of the penalty.

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Linear(2, 1)
    >>> reg = EWC(model, lam=2.0)
    >>> batches = [(torch.randn(4, 2), torch.randn(4, 1)) for _ in range(3)]
    >>> reg.estimate_fisher(lambda b: ((model(b[0]) - b[1]) ** 2).mean(), batches)
    >>> reg().item()
    0.0
    >>> with torch.no_grad():
    ...     model.bias += 1.0
    >>> fisher_bias = reg.get_buffer("fisher__bias")
    >>> torch.allclose(reg(), fisher_bias.sum())  # 2.0 / 2 * F_bias * 1.0**2
    True
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ()

    def __init__(self, source, lam=1.0):
        super().__init__()
        self.lam = lam
        self._source = tracked_params(source)
        self._anchor_names = register_copies(self, "anchor", self._source)
        self._fisher_names = register_copies(self, "fisher", self._source, fill=0.0)

    @torch.no_grad()
    def capture(self):
        """Takes the current weights of ``source`` as the new anchor, in place."""
        for (_, param), name in zip(self._source, self._anchor_names, strict=True):
            self._buffers[name].copy_(param)

    def estimate_fisher(self, loss_fn, batches, max_batches=None, normalize=False):
        """Estimates the diagonal Fisher as the mean squared gradient over batches.

        This is the *empirical* Fisher of the data given: for each batch,
        :math:`F \\mathrel{+}= (\\nabla_w \\mathcal{L}(\\text{batch}))^2`, then
        :math:`F` is divided by the number of batches. With the source-task loss
        on labelled data it is the empirical Fisher of Kirkpatrick et al.; with
        the negative log-likelihood of labels sampled from the model's own
        predictions it approaches the true Fisher. With batches of one example
        it is the per-example estimate; larger batches square the batch-mean
        gradient, which is cheaper and smaller in scale. Put the model in the
        mode you want (usually ``eval()``) before calling.

        All source parameters get a Fisher, frozen ones included:
        ``requires_grad`` is switched on for the estimate and restored after.
        The model's ``.grad`` fields are left untouched.

        Arguments
        ---------
        loss_fn : callable
            ``loss_fn(batch) -> scalar tensor``, computed through ``source``.
        batches : iterable
            The data; each item is passed to ``loss_fn`` as is.
        max_batches : int, optional
            Stops after this many batches.
        normalize : bool
            Divides :math:`F` by its largest entry over all parameters, so that
            ``lam`` is the weight of the most important parameter. Left as is
            when all entries are zero.

        Returns
        -------
        None
            The Fisher buffers are overwritten in place.
        """
        params = [p for _, p in self._source]
        fisher = [torch.zeros_like(p) for p in params]
        was_trainable = [p.requires_grad for p in params]
        count = 0
        try:
            for p in params:
                p.requires_grad_(True)
            for batch in itertools.islice(batches, max_batches):
                grads = torch.autograd.grad(loss_fn(batch), params, allow_unused=True)
                # Unused parameters get no gradient, hence zero Fisher.
                present = [(f, g) for f, g in zip(fisher, grads, strict=True) if g is not None]
                if present:
                    accum, grads = zip(*present, strict=True)
                    torch._foreach_addcmul_(list(accum), list(grads), list(grads))
                count += 1
        finally:
            for p, flag in zip(params, was_trainable, strict=True):
                p.requires_grad_(flag)
        if count == 0:
            raise ValueError("estimate_fisher got no batches")
        self._store_fisher(fisher, count, normalize)

    @torch.no_grad()
    def _store_fisher(self, fisher, count, normalize):
        scale = float(count)
        if normalize and fisher:
            peak = float(torch.stack([f.max() for f in fisher]).max()) / count
            scale *= peak if peak > 0 else 1.0
        for f, name in zip(fisher, self._fisher_names, strict=True):
            self._buffers[name].copy_(f / scale)

    def forward(self):
        """Computes the penalty.

        Returns
        -------
        torch.Tensor
            The scalar :math:`R(w)`, differentiable w.r.t. the trainable weights.
        """
        terms = [
            (self._buffers[f] * (p - self._buffers[a]).square()).sum()
            for (_, p), a, f in zip(self._source, self._anchor_names, self._fisher_names, strict=True)
            if p.requires_grad
        ]
        if not terms:
            return zero_like_first(self._source)
        return self.lam / 2 * torch.stack(terms).sum()
