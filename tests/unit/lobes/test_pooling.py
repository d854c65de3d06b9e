"""MeanMaxPooling: the masked maximum over the valid frames, forward and backward."""

import torch

from speechbrain_xfer.lobes import MeanMaxPooling


def test_mean_max_pooling_gives_the_masked_maximum_and_its_gradient():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 9, 6, generator=generator, requires_grad=True)
    lengths = torch.tensor([1.0, 5 / 9, 1 / 9, 7 / 9])
    pooled = MeanMaxPooling()(x, lengths)
    pooled[:, 6:].sum().backward()
    reference_x = x.detach().clone().requires_grad_(True)
    mask = torch.arange(9)[None, :] < torch.round(lengths * 9)[:, None]
    maxima = reference_x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
    maxima.sum().backward()
    assert torch.equal(pooled[:, 6:], maxima) and torch.equal(x.grad, reference_x.grad)
