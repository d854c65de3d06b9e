"""Factories for small classifier Brains on the tiny SynthSpeech corpus."""

import pytest
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.brains.transfer import TransferBrain
from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.regularization import L2SP


@pytest.fixture
def make_brain():
    """Builds a ConvEncoder classifier Brain; ``init_seed`` sets its starting weights."""

    def build(tmp_path, folder, targets, train_csv, regularizers=None, extra=None, init_seed=0, epochs=1):
        csvs = {"train": train_csv, "valid": train_csv, "test": train_csv}
        datasets, encoders = classification_datasets(str(folder), csvs, targets, str(tmp_path / "save"))
        torch.manual_seed(init_seed)
        encoder = ConvEncoder(40, channels=(48, 48), strides=(2, 1), dropout=0.0)
        heads = torch.nn.ModuleDict(
            {t: ClassifierHead(MeanMaxPooling(48), len(encoders[t]), dropout=0.0) for t in targets}
        )
        counter = EpochCounter(epochs)
        hparams = {
            "targets": targets,
            "label_encoders": encoders,
            "compute_features": Fbank(n_mels=40),
            "mean_var_norm": InputNormalization(norm_type="sentence"),
            "encoder": encoder,
            "heads": heads,
            "epoch_counter": counter,
            "regularizers": {"l2sp": L2SP(encoder, heads, alpha=0.1, beta=0.0)} if regularizers else {},
            **(extra or {}),
        }
        checkpointer = Checkpointer(str(tmp_path / "ckpt"), {"encoder": encoder, "heads": heads, "counter": counter})
        brain = UtteranceClassifierBrain(
            modules={"encoder": encoder, "heads": heads},
            opt_class=lambda params: torch.optim.Adam(params, lr=3e-3),
            hparams=hparams,
            run_opts={"device": "cpu"},
            checkpointer=checkpointer,
        )
        return brain, datasets

    return build


class RegressionBrain(TransferBrain):
    """A TransferBrain on (inputs, targets) tensor batches: mean squared error."""

    def compute_forward(self, batch, stage):
        inputs, _ = batch
        return {"predictions": self.modules.head(self.modules.encoder(inputs))}

    def compute_task_loss(self, outputs, batch, stage):
        return ((outputs["predictions"] - batch[1]) ** 2).mean()


@pytest.fixture
def train_regression():
    """Trains a small regression Brain with ``regularizer(encoder, head)`` (weight 2.0) for 3 epochs of 8
    batches; returns ``(all weights flattened, term_averages(), the Brain)``."""

    def train(regularizer, opt_class, extra=None, max_grad_norm=1.0):
        torch.manual_seed(0)
        encoder = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
        head = torch.nn.Linear(8, 1)
        brain = RegressionBrain(
            modules={"encoder": encoder, "head": head},
            opt_class=opt_class,
            hparams={
                "regularizers": {"l2sp": regularizer(encoder, head)},
                "regularizer_weights": {"l2sp": 2.0},
                "encoder": encoder,
                **(extra or {}),
            },
            run_opts={"device": "cpu", "max_grad_norm": max_grad_norm},
        )
        generator = torch.Generator().manual_seed(1)
        inputs = torch.randn(32, 3, generator=generator)
        data = torch.utils.data.TensorDataset(inputs, inputs.sum(dim=1, keepdim=True).sin())
        brain.fit(range(3), torch.utils.data.DataLoader(data, batch_size=4), progressbar=False)
        return torch.cat([p.detach().flatten() for p in brain.modules.parameters()]), brain.term_averages(), brain

    return train
