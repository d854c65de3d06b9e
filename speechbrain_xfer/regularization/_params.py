"""Bookkeeping shared by the weight-space regularizers (L2-SP, EWC).

The regularized model is referenced, never registered as a submodule: a
registered model would put its weights in the regularizer's ``parameters()``
and ``state_dict()``, so optimizers and checkpoints would see them twice.
"""

import torch


def tracked_params(source, exclude=None):
    """The named parameters of ``source`` not shared with ``exclude``, as a plain list.

    A plain list is invisible to ``nn.Module.__setattr__``, so storing it on a
    module registers nothing.
    """
    skip = set() if exclude is None else {id(p) for p in exclude.parameters()}
    return [(name, p) for name, p in source.named_parameters() if id(p) not in skip]


def register_copies(module, prefix, named_params, fill=None):
    """Registers one buffer per parameter and returns the buffer names.

    The buffer holds a detached copy of the parameter, or ``fill`` everywhere
    when given. Buffer names cannot contain dots, so ``.`` becomes ``__``.
    """
    names = []
    for name, param in named_params:
        buffer_name = f"{prefix}__{name.replace('.', '__')}"
        value = param.detach().clone() if fill is None else torch.full_like(param, fill, requires_grad=False)
        module.register_buffer(buffer_name, value)
        names.append(buffer_name)
    return names


def zero_like_first(named_params):
    """A scalar zero on the device and dtype of the first parameter, for empty sums."""
    if not named_params:
        return torch.zeros(())
    return named_params[0][1].new_zeros(())


def sum_of_squares(tensors):
    """sum_t ||t||^2 over a list of tensors, in one fused norm kernel where possible."""
    return torch.stack(torch._foreach_norm(tensors)).square().sum()
