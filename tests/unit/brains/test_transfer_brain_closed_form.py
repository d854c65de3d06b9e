"""TransferBrain adds L2-SP's closed-form gradient itself: the same training as back-propagating the penalty."""

import pytest
import torch

from speechbrain_xfer.regularization import L2SP


class AutogradL2SP(L2SP):
    """L2-SP without the closed-form methods: TransferBrain back-propagates it like any other term."""

    penalty = None


@pytest.fixture
def train(train_regression):
    """``(weights, logged terms, optimizer steps)`` of a run with ``regularizer_class`` (alpha 0.5, beta 0.1)."""

    def run(regularizer_class, extra=None):
        weights, terms, brain = train_regression(
            lambda encoder, head: regularizer_class(encoder, head, alpha=0.5, beta=0.1),
            lambda params: torch.optim.Adam(params, lr=0.05),
            extra,
        )
        return weights, terms, brain.optimizer_step

    return run


@pytest.mark.parametrize(
    "extra",
    [{}, {"encoder_opt_class": lambda groups: torch.optim.Adam(groups), "encoder_lr": 0.02, "layer_decay": 0.5}],
    ids=["one optimizer", "layer-wise lr groups"],
)
def test_the_same_weights_and_logged_terms_as_back_propagating_the_penalty(train, extra):
    closed, closed_terms, _ = train(L2SP, extra)
    autograd, autograd_terms, _ = train(AutogradL2SP, extra)
    assert (closed - autograd).abs().max() < 1e-6
    assert closed_terms.keys() == autograd_terms.keys() == {"task_loss", "R_l2sp"}
    for key, value in closed_terms.items():
        assert abs(value - autograd_terms[key]) < 1e-6 * max(1.0, abs(value)), key
    assert closed_terms["R_l2sp"] > 0


def test_gradient_accumulation_adds_the_penalty_once_per_step(train):
    closed, _, steps = train(L2SP, {"grad_accumulation_factor": 2})
    autograd, _, _ = train(AutogradL2SP, {"grad_accumulation_factor": 2})
    assert steps == 3 * 8 // 2  # 3 epochs of 8 batches, two batches per optimizer step
    assert (closed - autograd).abs().max() < 1e-6
