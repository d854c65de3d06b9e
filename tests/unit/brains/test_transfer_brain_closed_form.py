"""TransferBrain adds L2-SP's closed-form gradient itself: the same training as back-propagating the penalty."""

import pytest
import torch

from speechbrain_xfer.brains.transfer import TransferBrain
from speechbrain_xfer.regularization import L2SP


class AutogradL2SP(L2SP):
    """L2-SP without the closed-form methods: TransferBrain back-propagates it like any other term."""

    penalty = None


class RegressionBrain(TransferBrain):
    def compute_forward(self, batch, stage):
        inputs, _ = batch
        return {"predictions": self.modules.head(self.modules.encoder(inputs))}

    def compute_task_loss(self, outputs, batch, stage):
        return ((outputs["predictions"] - batch[1]) ** 2).mean()


def train(regularizer_class, extra=None):
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
    head = torch.nn.Linear(8, 1)
    regularizer = regularizer_class(encoder, head, alpha=0.5, beta=0.1)
    brain = RegressionBrain(
        modules={"encoder": encoder, "head": head},
        opt_class=lambda params: torch.optim.Adam(params, lr=0.05),
        hparams={
            "regularizers": {"l2sp": regularizer},
            "regularizer_weights": {"l2sp": 2.0},
            "encoder": encoder,
            **(extra or {}),
        },
        run_opts={"device": "cpu", "max_grad_norm": 1.0},
    )
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(32, 3, generator=generator)
    data = torch.utils.data.TensorDataset(inputs, inputs.sum(dim=1, keepdim=True).sin())
    brain.fit(range(3), torch.utils.data.DataLoader(data, batch_size=4), progressbar=False)
    weights = torch.cat([p.detach().flatten() for p in brain.modules.parameters()])
    return weights, brain.term_averages(), brain.optimizer_step


@pytest.mark.parametrize(
    "extra",
    [{}, {"encoder_opt_class": lambda groups: torch.optim.Adam(groups), "encoder_lr": 0.02, "layer_decay": 0.5}],
    ids=["one optimizer", "layer-wise lr groups"],
)
def test_the_same_weights_and_logged_terms_as_back_propagating_the_penalty(extra):
    closed, closed_terms, _ = train(L2SP, extra)
    autograd, autograd_terms, _ = train(AutogradL2SP, extra)
    assert (closed - autograd).abs().max() < 1e-6
    assert closed_terms.keys() == autograd_terms.keys() == {"task_loss", "R_l2sp"}
    for key, value in closed_terms.items():
        assert abs(value - autograd_terms[key]) < 1e-6 * max(1.0, abs(value)), key
    assert closed_terms["R_l2sp"] > 0


def test_gradient_accumulation_adds_the_penalty_once_per_step():
    closed, _, steps = train(L2SP, {"grad_accumulation_factor": 2})
    autograd, _, _ = train(AutogradL2SP, {"grad_accumulation_factor": 2})
    assert steps == 3 * 8 // 2  # 3 epochs of 8 batches, two batches per optimizer step
    assert (closed - autograd).abs().max() < 1e-6
