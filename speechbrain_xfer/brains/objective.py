"""The regularized objective ``task_loss + sum_k weight_k * R_k``, with each term's running average."""

import torch


class RegularizedObjective:
    """The regularizers of a run, their weights, and the average of each term over the current epoch.

    Each regularizer names the forward outputs it takes in its ``inputs``
    attribute (DELTA: features, encoder input, lengths); weight-space terms
    such as L2-SP take none. A regularizer with a closed-form gradient
    (``penalty`` and ``add_gradient_``, as L2-SP has) is not back-propagated:
    its value joins the loss without a graph, and :meth:`add_closed_form_gradients`
    adds its gradient, times its weight, to the parameters' gradients. A regularizer with ``decoupled`` set
    (``L2SP(decoupled=True)``) stays out of the loss: :meth:`pull_decoupled` applies it in each optimizer
    step, and :meth:`decoupled_values` gives its value for the logs.

    Arguments
    ---------
    regularizers : dict of str to torch.nn.Module
        The ``R_k``, by name.
    weights : dict of str to float
        Weight of each term (default 1.0); a name that is not a regularizer is an error.

    Example
    -------
    >>> from speechbrain_xfer.regularization import L2SP
    >>> model = torch.nn.Linear(2, 2)
    >>> objective = RegularizedObjective({"l2sp": L2SP(model, alpha=1.0)}, {"l2sp": 0.5})
    >>> objective.capture_anchors()
    >>> loss = objective(torch.tensor(1.0), {})
    >>> float(loss), objective.averages()
    (1.0, {'task_loss': 1.0, 'R_l2sp': 0.0})
    """

    def __init__(self, regularizers=None, weights=None):
        self.regularizers = dict(regularizers or {})
        weights = dict(weights or {})
        unknown = set(weights) - set(self.regularizers)
        if unknown:
            raise ValueError(
                f"regularizer_weights names {sorted(unknown)}, which are not in regularizers "
                f"({sorted(self.regularizers)})"
            )
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.regularizers}
        self.reset()

    def __call__(self, task_loss, outputs, caller="compute_forward"):
        """The total loss; the terms join the epoch's averages."""
        terms = self.terms(outputs, caller)
        loss = task_loss
        for name, value in terms.items():
            loss = loss + self.weights[name] * value
        values = {"task_loss": task_loss, **{f"R_{name}": value for name, value in terms.items()}}
        for key, value in values.items():
            # Summed on the device: reading a value here would make a GPU wait for the forward pass before
            # the backward pass is even queued (benchmarks/hf_step.py on a GPU showed it at small batches).
            value = value.detach().to(torch.float64)
            self._sums[key] = self._sums[key] + value if key in self._sums else value
        self.count += 1
        return loss

    def terms(self, outputs, caller="compute_forward"):
        """``{name: R_k}``, each computed from the forward outputs it names."""
        terms = {}
        for name, regularizer in self.regularizers.items():
            if is_decoupled(regularizer):
                continue
            if has_closed_form_gradient(regularizer):
                terms[name] = regularizer.penalty()
                continue
            needs = getattr(regularizer, "inputs", ())
            missing = [key for key in needs if outputs.get(key) is None]
            if missing:
                raise ValueError(
                    f"regularizer {name!r} needs the outputs {missing}, which {caller} did not "
                    f"provide (a frozen-encoder feature cache provides no encoder input)"
                )
            terms[name] = regularizer(*(outputs[key] for key in needs))
        return terms

    def reset(self):
        """Starts the averages of a new epoch."""
        self._sums, self.count = {}, 0

    def averages(self):
        """Average of the task loss and of each R_k since :meth:`reset`."""
        return {key: float(total) / max(self.count, 1) for key, total in self._sums.items()}

    def capture_anchors(self):
        """The anchors (L2-SP's, EWC's ...) become the current weights; under DDP, rank 0's."""
        for regularizer in self.regularizers.values():
            if hasattr(regularizer, "capture"):
                regularizer.capture()
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                for buffer in regularizer.buffers():
                    torch.distributed.broadcast(buffer, src=0)

    def add_closed_form_gradients(self):
        """Adds each closed-form term's weighted gradient to the parameters' gradients.

        Called once per optimizer step on the unscaled gradients, before clipping (so once for all
        micro-batches of gradient accumulation, whose penalties are the same: the weights do not move between
        them). That is the gradient autograd would give, at a fraction of the memory traffic for a large
        encoder (``benchmarks/hf_step.py``). Under DDP it comes after the all-reduce, which is the same, since
        every process holds the same weights and anchors.
        """
        for name, regularizer in self.regularizers.items():
            if has_closed_form_gradient(regularizer) and not is_decoupled(regularizer):
                regularizer.add_gradient_(self.weights[name])

    def pull_decoupled(self, optimizers):
        """The decoupled terms' step, before the ``optimizers`` step: each weight by its parameter group's rate
        (``pull_(rates, weight, takers=...)``; an optimizer with ``defer_pull`` applies it in its own step)."""
        decoupled = {name: reg for name, reg in self.regularizers.items() if is_decoupled(reg)}
        if not decoupled:
            return
        rates, takers = {}, {}
        for opt in optimizers:
            # An optimizer that applies the pull in its own pass over the weights (AnchoredAdamW) takes it over.
            defers = callable(getattr(opt, "defer_pull", None))
            for group in opt.param_groups:
                for p in group["params"]:
                    rates[id(p)] = group["lr"]
                    if defers:
                        takers[id(p)] = opt
        for name, regularizer in decoupled.items():
            regularizer.pull_(rates, self.weights[name], takers=takers)

    @torch.no_grad()
    def decoupled_values(self):
        """``{"R_<name>": value}`` of the decoupled terms on the current weights (for the logs: one pass each)."""
        return {f"R_{name}": float(reg()) for name, reg in self.regularizers.items() if is_decoupled(reg)}


def is_decoupled(regularizer):
    """Whether ``regularizer`` acts in the optimizer's update (``pull_``) instead of the loss."""
    return bool(getattr(regularizer, "decoupled", False)) and callable(getattr(regularizer, "pull_", None))


def has_closed_form_gradient(regularizer):
    """Whether ``regularizer`` adds its own gradient (``penalty`` and ``add_gradient_``) instead of autograd."""
    return callable(getattr(regularizer, "penalty", None)) and callable(getattr(regularizer, "add_gradient_", None))
