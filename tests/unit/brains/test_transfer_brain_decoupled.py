"""L2-SP in the optimizer's update (``L2SP(decoupled=True)``): with plain SGD, the same training as the penalty in
the loss; with Adam, what it changes (the pull is not scaled by Adam's statistics); and what it logs."""

import pytest
import torch

from speechbrain_xfer.regularization import L2SP, AnchoredAdamW


@pytest.fixture
def train(train_regression):
    """``(weights, logged terms, Brain)`` of a run with L2-SP (alpha 0.5, beta 0.1), in the loss or decoupled.
    No clipping: the decoupled pull is never clipped, the penalty's gradient is clipped with the others."""

    def run(decoupled, optimizer, extra=None, alpha=0.5, pull_every=1):
        def regularizer(encoder, head):
            return L2SP(encoder, head, alpha=alpha, beta=0.1, decoupled=decoupled, pull_every=pull_every)

        return train_regression(regularizer, optimizer, extra, max_grad_norm=1e9)

    return run


def sgd(params):
    return torch.optim.SGD(params, lr=0.05)


@pytest.mark.parametrize(
    "extra",
    [{}, {"encoder_opt_class": lambda groups: torch.optim.SGD(groups), "encoder_lr": 0.02, "layer_decay": 0.5}],
    ids=["one optimizer", "layer-wise lr groups"],
)
def test_with_sgd_the_decoupled_pull_trains_as_the_penalty_does(train, extra):
    in_loss, _, _ = train(False, sgd, extra)
    decoupled, _, _ = train(True, sgd, extra)
    assert (in_loss - decoupled).abs().max() < 1e-6


def test_with_adam_it_differs_from_the_penalty_and_still_pulls_towards_the_anchors(train):
    def adam(params):
        return torch.optim.Adam(params, lr=0.05)

    in_loss, _, _ = train(False, adam)
    decoupled, _, pulled = train(True, adam)
    _, _, unpulled = train(True, adam, alpha=0.0)
    assert (in_loss - decoupled).abs().max() > 1e-3  # Adam divides the penalty's gradient, not the pull
    assert distance_to_anchors(pulled) < 0.9 * distance_to_anchors(unpulled)


def distance_to_anchors(brain):
    pairs = brain.regularizers["l2sp"]._trainable_with_anchors()
    return sum(float((param.detach() - anchor).square().sum()) for param, anchor in pairs)


def test_the_decoupled_term_stays_out_of_the_loss_and_is_logged_at_the_end_of_the_epoch(train):
    _, terms, brain = train(True, sgd)
    assert terms.keys() == {"task_loss", "R_l2sp"}
    with torch.no_grad():
        assert terms["R_l2sp"] == pytest.approx(float(brain.regularizers["l2sp"]()))
    assert terms["R_l2sp"] > 0
    # The loss the Brain averaged is the task loss alone.
    assert brain.objective.averages().keys() == {"task_loss"}


def test_pulling_every_other_step_twice_as_hard_stays_close_to_pulling_every_step(train):
    every_step, _, _ = train(True, sgd)
    lumped, _, brain = train(True, sgd, pull_every=2)
    assert 0 < (every_step - lumped).abs().max() < 1e-2
    assert int(brain.regularizers["l2sp"].pulls) == brain.optimizer_step  # one pull_ per optimizer step


class CountingAnchoredAdamW(AnchoredAdamW):
    """AnchoredAdamW that counts the pulls handed to it."""

    handed = 0

    def defer_pull(self, param, anchor, strength):
        CountingAnchoredAdamW.handed += 1
        super().defer_pull(param, anchor, strength)


@pytest.mark.parametrize("pull_every", [1, 2])
def test_anchored_adamw_takes_the_pull_into_its_step_and_trains_as_the_pull_then_adamw(train, pull_every):
    def layerwise(opt_class):
        return {"encoder_opt_class": lambda groups: opt_class(groups), "encoder_lr": 0.02, "layer_decay": 0.5}

    def adamw(params):
        return torch.optim.AdamW(params, lr=0.05)

    def anchored(params):
        return CountingAnchoredAdamW(params, lr=0.05)

    separate, _, _ = train(True, adamw, layerwise(torch.optim.AdamW), pull_every=pull_every)
    CountingAnchoredAdamW.handed = 0
    fused, _, brain = train(True, anchored, layerwise(CountingAnchoredAdamW), pull_every=pull_every)
    assert (separate - fused).abs().max() < 1e-6
    # Every encoder weight's pull went to the optimizer (4 tensors, pulled every pull_every-th step).
    assert CountingAnchoredAdamW.handed == 4 * brain.optimizer_step // pull_every
