"""TransferBrain: a NaN or inf loss (or gradient) skips its step, is logged, and stops training past the patience."""

import logging

import pytest
import speechbrain as sb
import torch

from speechbrain_xfer.brains.transfer import TransferBrain

BATCHES = 6


class RegressionBrain(TransferBrain):
    """Least squares on a linear layer; the loss is multiplied by ``bad_value`` at the ``bad_steps`` batches."""

    def compute_forward(self, batch, stage):
        inputs, _ = batch
        return {"predictions": self.modules.model(inputs)}

    def compute_task_loss(self, outputs, batch, stage):
        loss = ((outputs["predictions"] - batch[1]) ** 2).mean()
        if stage == sb.Stage.TRAIN and self.step in self.hparams.bad_steps:
            return loss * self.hparams.bad_value
        return loss


def make_brain(bad_steps, bad_value=float("nan"), hparams=None, run_opts=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return RegressionBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.1),
        hparams={"bad_steps": set(bad_steps), "bad_value": bad_value, **(hparams or {})},
        run_opts={"device": "cpu", **(run_opts or {})},
    )


def batches():
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(BATCHES * 4, 3, generator=generator)
    data = torch.utils.data.TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=4)


def weights(brain):
    return torch.cat([p.detach().flatten() for p in brain.modules.model.parameters()])


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_nonfinite_loss_skips_its_step_and_is_counted_in_the_log(bad_value, caplog):
    brain = make_brain(bad_steps={2, 5}, bad_value=bad_value)
    with caplog.at_level(logging.WARNING, logger="speechbrain_xfer.brains.nonfinite"):
        brain.fit(range(1), batches(), progressbar=False)
    assert weights(brain).isfinite().all()
    messages = [r.getMessage() for r in caplog.records if "not finite" in r.getMessage()]
    assert len(messages) == 2
    assert "at batch 2: step skipped (1 such batches" in messages[0]
    assert "at batch 5: step skipped (2 such batches" in messages[1]
    assert "nonfinite_patience=3" in messages[1]  # SpeechBrain's default


def test_a_skipped_step_leaves_every_weight_as_it_was():
    untouched = weights(make_brain(bad_steps=()))
    brain = make_brain(bad_steps=range(1, BATCHES + 1), hparams={"nonfinite_patience": BATCHES})
    brain.fit(range(1), batches(), progressbar=False)
    assert brain.optimizer_step == BATCHES
    assert torch.equal(weights(brain), untouched)
    trained = make_brain(bad_steps=())
    trained.fit(range(1), batches(), progressbar=False)
    assert not torch.equal(weights(trained), untouched)


def test_a_nonfinite_gradient_with_a_finite_loss_skips_the_whole_step(caplog):
    brain = make_brain(bad_steps=())
    skipped_at_first = make_brain(bad_steps=())
    model = skipped_at_first.modules.model
    # Only the bias's gradient is poisoned (clipping then spreads the NaN to the other gradients of its optimizer).
    model.bias.register_hook(lambda grad: grad * float("nan") if skipped_at_first.step == 1 else grad)
    one_batch = [next(iter(batches()))]
    brain.fit(range(1), one_batch, progressbar=False)
    with caplog.at_level(logging.WARNING, logger="speechbrain_xfer.brains.nonfinite"):
        skipped_at_first.fit(range(1), one_batch, progressbar=False)
    assert torch.equal(weights(skipped_at_first), weights(make_brain(bad_steps=())))
    assert not torch.equal(weights(brain), weights(skipped_at_first))
    assert any(
        "gradient of model." in r.getMessage() and "not finite at batch 1" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("where", ["yaml", "command_line"])
def test_training_stops_with_a_clear_error_only_past_the_patience(where):
    option = {"nonfinite_patience": 2}
    brain = make_brain(bad_steps={1, 3, 4}, **({"hparams": option} if where == "yaml" else {"run_opts": option}))
    with pytest.raises(ValueError) as error:
        brain.fit(range(1), batches(), progressbar=False)
    message = str(error.value)
    assert "loss was not finite (NaN or inf) at batch 4" in message  # not at batches 1 or 3
    assert "3 such batches in this epoch, more than nonfinite_patience=2" in message
    assert "--nonfinite_patience" in message and "YAML" in message
    assert weights(brain).isfinite().all()
