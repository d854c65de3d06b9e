import pytest
import torch
from torch import nn

from speechbrain_xfer.regularization import L2SP


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def _perturb(module, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def test_zero_at_capture_and_hand_computed_after_perturbation():
    model = _model()
    encoder, head = model[0], model[2]
    reg = L2SP(encoder, head, alpha=0.3, beta=0.0)
    assert reg().item() == 0.0
    w0 = [p.detach().clone() for p in encoder.parameters()]
    _perturb(encoder)
    reg.beta = 0.7
    expected_source = 0.3 / 2 * sum(((p - a) ** 2).sum() for p, a in zip(encoder.parameters(), w0, strict=True))
    expected_head = 0.7 / 2 * sum((p**2).sum() for p in head.parameters())
    value = reg()
    torch.testing.assert_close(value, (expected_source + expected_head).detach())
    torch.testing.assert_close(reg.last_terms["source"], expected_source.detach())
    torch.testing.assert_close(reg.last_terms["head"], expected_head.detach())
    assert expected_source.item() > 0 and expected_head.item() > 0


def test_gradient_is_alpha_times_displacement_and_matches_finite_differences():
    model = _model()
    reg = L2SP(model[0], model[2], alpha=0.4, beta=0.2)
    w0 = [p.detach().clone() for p in model[0].parameters()]
    _perturb(model)
    reg().backward()
    for p, a in zip(model[0].parameters(), w0, strict=True):
        torch.testing.assert_close(p.grad, 0.4 * (p.detach() - a))
    for p in model[2].parameters():
        torch.testing.assert_close(p.grad, 0.2 * p.detach())

    weight, eps = model[0].weight, 1e-6
    with torch.no_grad():
        for index in [(0, 0), (2, 3), (4, 1)]:
            weight[index] += eps
            up = reg().item()
            weight[index] -= 2 * eps
            down = reg().item()
            weight[index] += eps
            assert abs((up - down) / (2 * eps) - weight.grad[index].item()) < 1e-6


def test_closed_form_path_gives_autograds_value_and_gradient():
    model = _model()
    reg = L2SP(model[0], model[2], alpha=0.4, beta=0.2)
    _perturb(model)
    model[0].bias.requires_grad_(False)  # frozen: no term, no gradient
    reg().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    value = reg().detach()
    model.zero_grad(set_to_none=True)
    model[0].weight.grad = torch.ones_like(model[0].weight)  # a task gradient is added to, not replaced
    torch.testing.assert_close(reg.penalty(), value, rtol=1e-12, atol=0)
    assert not reg.penalty().requires_grad
    reg.add_gradient_(scale=2.0)
    torch.testing.assert_close(model[0].weight.grad, 1 + 2 * expected["0.weight"], rtol=1e-12, atol=0)
    torch.testing.assert_close(model[2].weight.grad, 2 * expected["2.weight"], rtol=1e-12, atol=0)  # had none
    assert model[0].bias.grad is None
    with pytest.raises(RuntimeError, match="penalty"):
        reg.add_gradient_()  # each penalty() is added once

    model.requires_grad_(False)  # nothing trains (e.g. an encoder frozen for the first steps): nothing to add
    assert reg.penalty().item() == 0.0
    reg.add_gradient_()


def test_frozen_parameters_do_not_count_until_unfrozen():
    model = _model()
    reg = L2SP(model, alpha=1.0)
    _perturb(model)
    full = reg().item()
    model[0].requires_grad_(False)
    partial = reg().item()
    w0_last = [reg.get_buffer(f"anchor__2__{name}") for name in ("weight", "bias")]
    expected = 0.5 * sum(((p - a) ** 2).sum().item() for p, a in zip(model[2].parameters(), w0_last, strict=True))
    assert partial < full
    assert abs(partial - expected) < 1e-9
    model.requires_grad_(False)
    assert reg().item() == 0.0
    model[0].requires_grad_(True)
    assert reg().item() > 0.0


def test_not_a_parent_of_the_model():
    model = _model()
    reg = L2SP(model[0], model[2])
    assert list(reg.parameters()) == []
    assert list(reg.children()) == []
    assert sorted(reg.state_dict()) == ["anchor__bias", "anchor__weight"]


def test_shared_head_parameters_count_once_in_the_head():
    model = _model()
    reg = L2SP(model, model[2], alpha=1.0, beta=0.0)
    assert sorted(reg.state_dict()) == ["anchor__0__bias", "anchor__0__weight"]
    with torch.no_grad():
        model[2].weight.add_(1.0)
    assert reg().item() == 0.0


def test_anchors_follow_dtype_moves():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    reg = L2SP(model, alpha=2.0)
    model.to(torch.float64)
    reg.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in reg.buffers())
    assert reg().dtype == torch.float64
    assert reg().item() == 0.0


def test_capture_retakes_the_anchor():
    model = _model()
    reg = L2SP(model, alpha=1.0)
    _perturb(model)
    assert reg().item() > 0
    reg.capture()
    assert reg().item() == 0.0


def test_state_dict_round_trip_restores_the_original_anchor():
    pretrained = _model()
    reg = L2SP(pretrained, alpha=1.0)
    saved = {k: v.clone() for k, v in reg.state_dict().items()}

    trained = _model()
    trained.load_state_dict(pretrained.state_dict())
    _perturb(trained)
    resumed = L2SP(trained, alpha=1.0)
    assert resumed().item() == 0.0
    resumed.load_state_dict(saved)
    for name, p in pretrained.named_parameters():
        torch.testing.assert_close(resumed.get_buffer("anchor__" + name.replace(".", "__")), p.detach())
    expected = 0.5 * sum(
        ((a - b) ** 2).sum() for a, b in zip(trained.parameters(), pretrained.parameters(), strict=True)
    )
    torch.testing.assert_close(resumed(), expected.detach())


def _fine_tune(use_reg):
    model = _model()
    w0 = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    reg = L2SP(model, alpha=1.0, beta=0.0)
    opt = torch.optim.SGD(list(model.parameters()) + list(reg.parameters()), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(32, 3, generator=gen, dtype=torch.float64) * 3
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        if use_reg:
            loss = loss + reg()
        loss.backward()
        opt.step()
    return (torch.nn.utils.parameters_to_vector(model.parameters()) - w0).norm().item()


def test_fine_tuning_with_l2sp_stays_closer_to_the_pretrained_weights():
    free, anchored = _fine_tune(False), _fine_tune(True)
    assert anchored < 0.9 * free


def test_decoupled_pull_every_k_steps_pulls_a_share_of_the_weights_k_times_as_hard():
    layers = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    reg = L2SP(layers, alpha=0.5, beta=0.0, decoupled=True, pull_every=2)
    params = list(layers.parameters())  # weight, bias, weight, bias: indices 0..3
    with torch.no_grad():
        for param in params:
            param.add_(1.0)  # every weight 1 away from its anchor
            param.grad = torch.zeros_like(param)
    rates = {id(p): 0.1 for p in params}
    moved = []
    for _ in range(2):
        before = [p.detach().clone() for p in params]
        reg.pull_(rates)
        moved.append([float((b - p.detach()).abs().max()) for b, p in zip(before, params)])
    # 2 * 0.1 * 0.5 * 1: the even-indexed parameters at the first step, the odd ones at the second.
    assert moved[0] == pytest.approx([0.1, 0, 0.1, 0]) and moved[1] == pytest.approx([0, 0.1, 0, 0.1])
    assert int(reg.state_dict()["pulls"]) == 2  # resumed runs keep the round robin's place


def test_pull_every_needs_the_decoupled_form_and_a_positive_integer():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="decoupled: True"):
        L2SP(layer, pull_every=4)
    with pytest.raises(ValueError, match="positive integer"):
        L2SP(layer, decoupled=True, pull_every=0)
    assert "pulls" not in L2SP(layer, decoupled=True).state_dict()  # checkpoints of the plain forms unchanged
