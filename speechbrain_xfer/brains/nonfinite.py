"""Non-finite training steps: a batch whose loss or any gradient is NaN or inf moves no weight.

SpeechBrain drops only the non-finite gradients and steps the other
parameters, and a NaN loss with finite gradients (a NaN that does not depend
on the weights) would still update them. Here the whole step is skipped, the
log counts it, and training stops, saying how to change that, only after more
than ``nonfinite_patience`` such batches in an epoch.
"""

import logging

import torch

logger = logging.getLogger(__name__)


def nonfinite_gradients(named_grads, grad_norms=None):
    """Names of the gradients that are not finite everywhere; empty when all are.

    ``grad_norms``, total norms covering every gradient (as clipping computes
    them), decide with one check: a gradient is finite everywhere if and only
    if the norm is. The gradients are searched only to name a culprit.

    Example
    -------
    >>> grads = [("a", torch.ones(2)), ("b", torch.tensor([1.0, float("nan")]))]
    >>> nonfinite_gradients(grads), nonfinite_gradients(grads[:1])
    (['b'], [])
    """
    if grad_norms is None:
        grad_norms = torch._foreach_norm([grad for _, grad in named_grads]) if named_grads else []
    if not grad_norms or all_finite(grad_norms):
        return []
    return [name for name, grad in named_grads if not grad.isfinite().all()] or ["(total norm)"]


def all_finite(norms):
    """Whether every norm (a scalar tensor) is finite, in one check."""
    return bool(torch.stack([n.float() for n in norms]).isfinite().all())


def count_nonfinite_batch(brain, what):
    """Counts a skipped batch in ``brain.nonfinite_count``; raises once there are more than its patience.

    Arguments
    ---------
    brain : speechbrain.Brain
        Its ``nonfinite_count`` (reset at each epoch by SpeechBrain), ``nonfinite_patience`` and ``step``.
    what : str
        What was not finite, for the message: ``"loss"``, ``"gradient of <name>"``.
    """
    brain.nonfinite_count += 1
    count, patience = brain.nonfinite_count, brain.nonfinite_patience
    if count > patience:
        raise ValueError(
            f"Training stopped: the {what} was not finite (NaN or inf) at batch {brain.step}, "
            f"making {count} such batches in this epoch, more than nonfinite_patience={patience}. "
            f"Lower the learning rate or check the data; to tolerate more bad batches per epoch, "
            f"set nonfinite_patience in the YAML or --nonfinite_patience on the command line."
        )
    logger.warning(
        f"The {what} is not finite at batch {brain.step}: step skipped ({count} such batches in this "
        f"epoch; training stops after more than nonfinite_patience={patience})"
    )


def drop_nonfinite_step(brain, loss_was_nonfinite, grad_norms=None):
    """Drops every gradient of ``brain.modules`` when the loss or any gradient is not finite, and counts it.

    Called after clipping, with the total norms clipping computed (one check);
    a non-finite loss was counted already (``check_loss_isfinite``).
    """
    if grad_norms and not loss_was_nonfinite and all_finite(grad_norms):
        return  # the common case, decided without walking the parameters: every total norm, so every gradient, finite
    named = [(name, p.grad) for name, p in brain.modules.named_parameters() if p.grad is not None]
    bad = nonfinite_gradients(named, grad_norms)
    if bad and not loss_was_nonfinite:
        count_nonfinite_batch(brain, f"gradient of {bad[0]}" + (f" (and {len(bad) - 1} more)" if bad[1:] else ""))
    if bad or loss_was_nonfinite:
        for param in brain.modules.parameters():
            param.grad = None
