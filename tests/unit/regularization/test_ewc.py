import pytest
import torch
from torch import nn

from speechbrain_xfer.regularization import EWC


def _setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 2).double()
    gen = torch.Generator().manual_seed(seed + 1)
    batches = [
        (torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 2, generator=gen, dtype=torch.float64))
        for _ in range(5)
    ]
    return model, batches


def _loss(model):
    return lambda batch: ((model(batch[0]) - batch[1]) ** 2).mean()


def _hand_fisher(model, batches):
    """Per-batch gradients of the mean squared error, written out for a linear model."""
    fisher_w, fisher_b = torch.zeros_like(model.weight), torch.zeros_like(model.bias)
    for x, y in batches:
        residual = 2 * (x @ model.weight.detach().T + model.bias.detach() - y) / y.numel()
        fisher_w += (residual.T @ x) ** 2
        fisher_b += residual.sum(0) ** 2
    return fisher_w / len(batches), fisher_b / len(batches)


def test_fisher_is_the_mean_squared_gradient():
    model, batches = _setup()
    reg = EWC(model)
    reg.estimate_fisher(_loss(model), batches)
    fisher_w, fisher_b = _hand_fisher(model, batches)
    torch.testing.assert_close(reg.get_buffer("fisher__weight"), fisher_w)
    torch.testing.assert_close(reg.get_buffer("fisher__bias"), fisher_b)
    assert model.weight.grad is None and model.bias.grad is None


def test_max_batches_normalize_and_frozen_parameters():
    model, batches = _setup()
    model.bias.requires_grad_(False)
    reg = EWC(model)
    reg.estimate_fisher(_loss(model), iter(batches), max_batches=2, normalize=True)
    assert not model.bias.requires_grad
    fisher_w, fisher_b = _hand_fisher(model, batches[:2])
    peak = torch.maximum(fisher_w.max(), fisher_b.max())
    torch.testing.assert_close(reg.get_buffer("fisher__weight"), fisher_w / peak)
    torch.testing.assert_close(reg.get_buffer("fisher__bias"), fisher_b / peak)
    with pytest.raises(ValueError, match="no batches"):
        reg.estimate_fisher(_loss(model), [])


def test_zero_at_capture_and_gradient_is_lam_fisher_displacement():
    model, batches = _setup()
    reg = EWC(model, lam=3.0)
    reg.estimate_fisher(_loss(model), batches)
    assert reg().item() == 0.0
    w0 = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        model.weight.add_(0.5)
        model.bias.sub_(0.25)
    fishers = [reg.get_buffer("fisher__weight"), reg.get_buffer("fisher__bias")]
    value = reg()
    expected = 1.5 * sum((f * (p - a) ** 2).sum() for p, a, f in zip(model.parameters(), w0, fishers, strict=True))
    torch.testing.assert_close(value, expected.detach())
    value.backward()
    for p, a, f in zip(model.parameters(), w0, fishers, strict=True):
        torch.testing.assert_close(p.grad, 3.0 * f * (p.detach() - a))
    model.requires_grad_(False)
    assert reg().item() == 0.0


def test_state_dict_round_trip_and_no_parameters():
    model, batches = _setup()
    reg = EWC(model)
    reg.estimate_fisher(_loss(model), batches)
    assert list(reg.parameters()) == []
    saved = {k: v.clone() for k, v in reg.state_dict().items()}
    assert sorted(saved) == ["anchor__bias", "anchor__weight", "fisher__bias", "fisher__weight"]

    trained, _ = _setup(seed=5)
    resumed = EWC(trained)
    resumed.load_state_dict(saved)
    for key, value in saved.items():
        torch.testing.assert_close(resumed.get_buffer(key), value)
    expected = 0.5 * sum(
        (saved[f"fisher__{n}"] * (p - saved[f"anchor__{n}"]) ** 2).sum() for n, p in trained.named_parameters()
    )
    torch.testing.assert_close(resumed(), expected.detach())
    assert resumed().item() > 0
