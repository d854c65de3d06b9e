"""L2-SP: weight decay towards the pretrained weights instead of towards zero."""

from collections import defaultdict

import torch
from torch import nn

from speechbrain_xfer.regularization._params import (
    differences,
    register_copies,
    sum_of_squares,
    tracked_params,
    zero_like_first,
)


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

    The penalty has a closed-form gradient, so a training loop may skip
    autograd for it: :meth:`penalty` gives the value without a graph, and
    :meth:`add_gradient_`, called after ``backward``, adds ``scale`` times the
    gradient into each parameter's ``.grad``, as autograd would have. The
    gradient is the same, and the step is cheaper: at the size of
    wav2vec2-base, autograd's backward through the penalty allocates and
    fills fresh parameter-sized buffers on every step, while this path
    adds into the existing gradients (and, on the CPU, reuses one scratch
    tensor per parameter; not saved: they are not buffers of the module).
    TransferBrain takes this path.

    With ``decoupled=True`` the pull leaves the loss and joins the optimizer's update, as AdamW's weight
    decay does (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): before each
    optimizer step, :meth:`pull_` moves every trainable weight by

    .. math::

        w \\leftarrow w - \\eta \\alpha (w - w^0) \\quad \\text{(source)}, \\qquad
        w \\leftarrow w - \\eta \\beta w \\quad \\text{(head)}

    with :math:`\\eta` the learning rate of the weight's parameter group at that step (so layer-wise rates
    and schedules apply to it), and the gradient never sees the term. With plain SGD this is the same
    update as the penalty's (the test checks it to 1e-6); with Adam(W) it differs as AdamW's decay differs
    from an L2 penalty: the pull is not divided by Adam's running gradient scale, so it acts with the same
    strength on every weight, and it is not clipped with the gradients. One ``lerp`` over the weights (read
    ``w`` and ``w0``, write ``w``: three memory passes), where the penalty's gradient costs about seven. The value of
    :math:`R(w)` is then only logged (at the end of each epoch), never back-propagated.

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
    decoupled : bool
        Pull the weights in the optimizer's update instead of through the loss (see above).
    pull_every : int
        With ``decoupled``: pull each weight every ``pull_every``-th step only, by ``pull_every`` times the
        rate, a different ``1 / pull_every`` of the weights at each step (round robin). The same total pull,
        applied in lumps of up to ``pull_every`` steps' worth ("lazy regularization", as StyleGAN2 applies
        its R1 term every 16 steps); the pull's memory traffic shrinks by that factor.

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
    >>> value = reg.penalty()  # the same value, no graph; then, after backward:
    >>> reg.add_gradient_(scale=1.0)
    >>> encoder.bias.grad  # 0.1 * (w - w0)
    tensor([0.1000, 0.1000, 0.1000])
    """

    #: What the training loop passes to ``forward``, by name.
    inputs = ()

    def __init__(self, source, head=None, alpha=0.01, beta=0.01, decoupled=False, pull_every=1):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.decoupled = decoupled
        if isinstance(pull_every, bool) or not isinstance(pull_every, int) or pull_every < 1:
            raise ValueError(f"L2SP pull_every must be a positive integer, not {pull_every!r}")
        if pull_every > 1 and not decoupled:
            raise ValueError("L2SP pull_every is for the decoupled form: set decoupled: True as well")
        self.pull_every = pull_every
        if pull_every > 1:  # saved with the checkpoints: a resumed run pulls the same weights at the same steps
            self.register_buffer("pulls", torch.zeros((), dtype=torch.long))
        self._source = tracked_params(source, exclude=head)
        self._head = [] if head is None else list(head.named_parameters())
        self._anchor_names = register_copies(self, "anchor", self._source)
        self.last_terms = {}
        self._scratch = {}  # param id -> its displacement w - w0 from the last penalty(), on the CPU
        self._pending = None  # the (params, displacements, head params) of the last penalty()

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

    @torch.no_grad()
    def penalty(self):
        """The value of :meth:`forward`, without a graph, keeping what :meth:`add_gradient_` needs.

        Returns
        -------
        torch.Tensor
            The scalar :math:`R(w)`, detached.
        """
        pairs = self._trainable_with_anchors()
        head = [p for _, p in self._head if p.requires_grad]
        zero = zero_like_first(self._source or self._head)
        source_term, params, displacements = zero, [], []
        if pairs:
            params, anchors = (list(side) for side in zip(*pairs, strict=True))
            displacements = differences(params, anchors, self._scratch_for)
            source_term = self.alpha / 2 * sum_of_squares(displacements)
        head_term = self.beta / 2 * sum_of_squares(head) if head else zero
        self.last_terms = {"source": source_term, "head": head_term}
        self._pending = (params, displacements, head)
        return source_term + head_term

    @torch.no_grad()
    def add_gradient_(self, scale=1.0):
        """Adds ``scale`` times the gradient of the last :meth:`penalty` into the parameters' ``.grad``.

        The gradient is :math:`\\alpha (w - w^0)` for the source and :math:`\\beta w` for the head;
        a parameter without a ``.grad`` yet gets one.

        Arguments
        ---------
        scale : float
            The weight of this term in the loss (and any loss scaling already applied to the other gradients).
        """
        if self._pending is None:
            raise RuntimeError("add_gradient_ needs the displacements of a penalty() call first")
        params, displacements, head = self._pending
        self._pending = None
        _add_scaled(params, displacements, scale * self.alpha)
        if head and self.beta:
            _add_scaled(head, head, scale * self.beta)

    @torch.no_grad()
    def pull_(self, learning_rates, scale=1.0, takers=None):
        """The decoupled form's step: ``w -= lr * scale * alpha * (w - w0)`` (source) and ``w -= lr * scale * beta * w``
        (head), for each trainable weight that has a gradient in this step and a learning rate.

        Arguments
        ---------
        learning_rates : dict
            ``{id(param): learning rate}`` of the parameters the optimizers step now; others are left alone.
        scale : float
            The weight of this term (``regularizer_weights``).
        takers : dict, optional
            ``{id(param): optimizer}`` for parameters whose optimizer applies the source's pull in its own
            step (``defer_pull``, as :class:`~speechbrain_xfer.regularization.AnchoredAdamW`): handed over,
            not applied here.

        Example
        -------
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> reg = L2SP(layer, alpha=0.5, decoupled=True)
        >>> with torch.no_grad():
        ...     _ = layer.weight.fill_(3.0)
        >>> layer.weight.grad = torch.zeros_like(layer.weight)
        >>> reg.capture()
        >>> with torch.no_grad():
        ...     _ = layer.weight.add_(2.0)
        >>> reg.pull_({id(layer.weight): 0.1})  # 5 - 0.1 * 0.5 * (5 - 3)
        >>> layer.weight
        Parameter containing:
        tensor([[4.9000, 4.9000]], requires_grad=True)
        """
        every, phase = self.pull_every, 0
        if every > 1:
            phase = int(self.pulls) % every
            self.pulls += 1
        scale = scale * every
        takers = takers or {}
        pairs = defaultdict(lambda: ([], []))
        for index, (param, anchor) in enumerate(self._trainable_with_anchors()):
            rate = learning_rates.get(id(param))
            # A step without its gradient (a dropped batch) moves nothing.
            if index % every != phase or not rate or param.grad is None:
                continue
            if id(param) in takers:
                takers[id(param)].defer_pull(param, anchor, scale * self.alpha)
            else:
                pairs[rate][0].append(param)
                pairs[rate][1].append(anchor)
        for rate, (params, anchors) in pairs.items():
            torch._foreach_lerp_(params, anchors, rate * scale * self.alpha)
        if not self.beta:
            return
        decayed = defaultdict(list)
        head = [param for _, param in self._head if param.requires_grad]
        for index, param in enumerate(head):
            rate = learning_rates.get(id(param))
            if index % every == phase and rate and param.grad is not None:
                decayed[rate].append(param)
        for rate, params in decayed.items():
            torch._foreach_mul_(params, 1.0 - rate * scale * self.beta)

    def _scratch_for(self, param):
        scratch = self._scratch.get(id(param))
        if scratch is None or scratch.shape != param.shape or scratch.device != param.device:
            scratch = self._scratch[id(param)] = torch.empty_like(param, memory_format=torch.preserve_format)
        return scratch


def _add_scaled(params, values, scale):
    """``p.grad += scale * v`` for each pair, in one fused kernel where every ``p`` has a gradient already."""
    if not params:  # e.g. the whole encoder frozen for the first steps
        return
    missing = [i for i, p in enumerate(params) if p.grad is None]
    for i in missing:  # e.g. a transformer layer skipped by layer drop in this step
        params[i].grad = torch.zeros_like(params[i])
    torch._foreach_add_([p.grad for p in params], values, alpha=scale)
