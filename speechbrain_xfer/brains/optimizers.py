"""Optimizers of a transfer run: the encoder's (layer-wise rates) and the head's, clipping, annealing."""

import torch

from speechbrain_xfer.brains.schedules import encoder_layers, layerwise_param_groups


def encoder_and_head_optimizers(modules, encoder, encoder_opt_class, opt_class, encoder_lr, layer_decay=1.0):
    """``(encoder optimizer, head optimizer)``: the encoder's layers in groups of decaying rates, the rest apart.

    The encoder's group of layer ``k`` of ``N`` gets ``encoder_lr * layer_decay ** (N - k)``
    (:func:`~speechbrain_xfer.brains.schedules.layerwise_param_groups`); every parameter of ``modules``
    outside ``encoder`` goes to ``opt_class``.

    Example
    -------
    >>> encoder, head = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)), torch.nn.Linear(2, 1)
    >>> modules = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    >>> enc, hd = encoder_and_head_optimizers(modules, encoder, torch.optim.SGD, torch.optim.SGD, 0.1)
    >>> sum(len(g["params"]) for g in enc.param_groups), len(hd.param_groups[0]["params"])
    (4, 2)
    """
    encoder_ids = {id(p) for p in encoder.parameters()}
    head_params = [p for p in modules.parameters() if id(p) not in encoder_ids]
    groups = layerwise_param_groups(encoder, encoder_layers(encoder), encoder_lr, layer_decay)
    return encoder_opt_class(groups), opt_class(head_params)


def clip_every_group(optimizers, max_norm):
    """Clips the gradients of every parameter group of each optimizer; returns each optimizer's total norm.

    SpeechBrain's ``Brain.optimizers_step`` clips only ``param_groups[0]`` of
    each optimizer, which would leave layer-wise learning-rate groups unclipped.

    Example
    -------
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.SGD([{"params": [w]}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}], lr=1)
    >>> w.grad = torch.tensor([3.0, 4.0])
    >>> [float(n) for n in clip_every_group([opt], 1.0)], w.grad.norm().item() <= 1.0 + 1e-6
    ([5.0], True)
    """
    norms = []
    for opt in optimizers:
        params = [p for group in opt.param_groups for p in group["params"]]
        norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return norms


def anneal_learning_rates(schedulers, metric):
    """Steps each ``(scheduler, optimizer)`` of ``{name: ...}`` on ``metric``; returns ``{"lr_<name>": rate}``.

    Each optimizer's groups are scaled by the scheduler's new/old ratio, which
    keeps layer-wise ratios intact. A pair with ``None`` in it is skipped.

    Example
    -------
    >>> from speechbrain.nnet.schedulers import NewBobScheduler
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> scheduler = NewBobScheduler(initial_value=1.0, annealing_factor=0.5, patient=0)
    >>> anneal_learning_rates({"head": (scheduler, opt)}, 1.0), anneal_learning_rates({"head": (scheduler, opt)}, 2.0)
    ({'lr_head': 1.0}, {'lr_head': 0.5})
    >>> opt.param_groups[0]["lr"]
    0.5
    """
    rates = {}
    for name, (scheduler, optimizer) in schedulers.items():
        if scheduler is None or optimizer is None:
            continue
        old, new = scheduler(metric)
        for group in optimizer.param_groups:
            group["lr"] *= new / old if old else 1.0
        rates[f"lr_{name}"] = new
    return rates
