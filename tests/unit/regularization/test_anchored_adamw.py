"""AnchoredAdamW: the decoupled L2-SP pull and AdamW's update in one compiled pass, equal to the two apart."""

import copy
import os

import pytest
import torch

from speechbrain_xfer.regularization.anchored_adamw import AnchoredAdamW, kernel


@pytest.fixture(scope="module")
def compiled():
    """The built kernel: required under CI (a C++ compiler and ninja are there); elsewhere a skip says why."""
    built = kernel()
    if built is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("AnchoredAdamW's kernel did not build (see the warning above)")
        pytest.skip("AnchoredAdamW's kernel cannot be built here (a C++ compiler and ninja are needed)")
    return built


def two_layers(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Tanh(), torch.nn.Linear(30, 5)).to(dtype)


def groups(model):
    """Two parameter groups with their own learning rates (as layer-wise rates give)."""
    return [{"params": list(model[0].parameters()), "lr": 0.01}, {"params": list(model[2].parameters()), "lr": 0.003}]


def train(model, optimizer, anchors, strength, pull, steps=5):
    """``steps`` steps on a fixed batch; ``pull`` applies the pulls towards ``anchors`` before each."""
    inputs = torch.randn(16, 40, generator=torch.Generator().manual_seed(1), dtype=next(model.parameters()).dtype)
    for _ in range(steps):
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        pull(optimizer, anchors, strength)
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def deferred(optimizer, anchors, strength):
    for group in optimizer.param_groups:
        for param in group["params"]:
            optimizer.defer_pull(param, anchors[id(param)], strength)


@torch.no_grad()
def lerped(optimizer, anchors, strength):
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.lerp_(anchors[id(param)], group["lr"] * strength)


def anchors_of(model):
    return {id(p): p.detach() + 0.1 * torch.randn_like(p) for p in model.parameters()}


@pytest.mark.parametrize("weight_decay", [0.0, 0.02])
def test_the_pull_in_the_kernel_equals_the_lerp_then_adamw(compiled, weight_decay):
    fused_model, model = two_layers(), two_layers()
    fused = AnchoredAdamW(groups(fused_model), weight_decay=weight_decay)
    separate = torch.optim.AdamW(groups(model), weight_decay=weight_decay, foreach=False)
    anchors = anchors_of(fused_model)
    same_anchors = {id(q): anchors[id(p)] for p, q in zip(fused_model.parameters(), model.parameters(), strict=True)}
    start = torch.cat([p.detach().flatten() for p in model.parameters()])
    after_fused = train(fused_model, fused, anchors, 0.5, deferred)
    after_separate = train(model, separate, same_anchors, 0.5, lerped)
    assert (after_fused - after_separate).abs().max() < 1e-6
    assert (after_fused - start).abs().max() > 1e-2  # it trained


def test_without_pulls_it_is_adamw_and_hooks_run_once_per_step(compiled):
    fused_model, model = two_layers(), two_layers()
    fused = AnchoredAdamW(groups(fused_model), weight_decay=0.01)
    calls = []
    fused.register_step_pre_hook(lambda *args: calls.append(1))
    after_fused = train(fused_model, fused, {}, 0.0, lambda *args: None)
    after = train(model, torch.optim.AdamW(groups(model), weight_decay=0.01), {}, 0.0, lambda *args: None)
    assert (after_fused - after).abs().max() < 1e-6
    assert len(calls) == 5


def test_weights_it_does_not_cover_are_pulled_apart_with_the_same_result():
    # float64 and amsgrad: the kernel is float32 AdamW; the pull is a lerp, the update AdamW's own.
    for dtype, amsgrad in ((torch.float64, False), (torch.float32, True)):
        fused_model, model = two_layers(dtype), two_layers(dtype)
        fused = AnchoredAdamW(groups(fused_model), amsgrad=amsgrad)
        separate = torch.optim.AdamW(groups(model), amsgrad=amsgrad)
        anchors = anchors_of(fused_model)
        same = {id(q): anchors[id(p)] for p, q in zip(fused_model.parameters(), model.parameters(), strict=True)}
        after_fused = train(fused_model, fused, anchors, 0.5, deferred)
        assert torch.equal(after_fused, train(model, separate, same, 0.5, lerped))


def test_its_state_is_adamws_so_checkpoints_load_into_either(compiled):
    fused_model, model = two_layers(), two_layers()
    fused = AnchoredAdamW(groups(fused_model))
    train(fused_model, fused, anchors_of(fused_model), 0.5, deferred, steps=3)
    model.load_state_dict(fused_model.state_dict())
    plain = torch.optim.AdamW(groups(model))
    plain.load_state_dict(copy.deepcopy(fused.state_dict()))  # as from a file: no state tensor shared
    after_fused = train(fused_model, fused, {}, 0.0, lambda *args: None, steps=2)
    after = train(model, plain, {}, 0.0, lambda *args: None, steps=2)
    assert (after_fused - after).abs().max() < 1e-6
    assert set(fused.state[fused_model[0].weight]) == {"step", "exp_avg", "exp_avg_sq"}
