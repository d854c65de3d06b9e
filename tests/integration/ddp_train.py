"""Trains a small keyword Brain with a partly frozen encoder and L2-SP; run under torchrun.

    torchrun --nproc_per_node=2 ddp_train.py DATA_FOLDER TRAIN_CSV OUT_FOLDER

Each rank saves its final parameters to ``OUT_FOLDER/rank<r>.pt``.
"""

import os
import sys

import speechbrain as sb
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import ddp_init_group
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.experiment import destroy_process_group_at_exit
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.regularization import L2SP


def _save_label_encoders(*args):
    classification_datasets(*args)  # returns nothing: run_on_main broadcasts the result


def main(data_folder, train_csv, out_folder):
    run_opts = {"device": "cpu", "distributed_backend": "gloo"}
    ddp_init_group(run_opts)
    destroy_process_group_at_exit()
    csvs = {"train": train_csv, "valid": train_csv}
    args = [data_folder, csvs, ["word"], os.path.join(out_folder, "save")]
    # Rank 0 writes the label encoder first; the others then load the same one.
    sb.utils.distributed.run_on_main(_save_label_encoders, args=args)
    datasets, encoders = classification_datasets(*args)
    # Every rank starts from different random weights: DDP must make them equal.
    torch.manual_seed(int(os.environ["RANK"]))
    encoder = ConvEncoder(40, channels=(32, 32, 32), strides=(2, 1, 1), dropout=0.0)
    heads = torch.nn.ModuleDict({"word": ClassifierHead(MeanMaxPooling(32), len(encoders["word"]), dropout=0.0)})
    counter = EpochCounter(2)
    hparams = {
        "targets": ["word"],
        "label_encoders": encoders,
        "compute_features": Fbank(n_mels=40),
        "mean_var_norm": InputNormalization(norm_type="sentence"),
        "encoder": encoder,
        "heads": heads,
        "epoch_counter": counter,
        # The bottom layer stays frozen for the whole run: 2 + 2 * 2 steps > 4 steps.
        "freeze_encoder_steps": 2,
        "unfreeze_every": 2,
        "encoder_opt_class": lambda groups: torch.optim.Adam(groups),
        "encoder_lr": 1e-3,
        "regularizers": {"l2sp": L2SP(encoder, heads, alpha=0.1, beta=0.0)},
    }
    recoverables = {"encoder": encoder, "heads": heads, "counter": counter}
    checkpointer = Checkpointer(os.path.join(out_folder, "ckpt"), recoverables)
    brain = UtteranceClassifierBrain(
        modules={"encoder": encoder, "heads": heads},
        opt_class=lambda params: torch.optim.Adam(params, lr=3e-3),
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    loader = {"batch_size": 5}
    brain.fit(counter, datasets["train"], datasets["valid"], train_loader_kwargs=loader, valid_loader_kwargs=loader)
    rank = int(os.environ["RANK"])
    state = {
        "params": {name: p.detach().clone() for name, p in brain.modules.named_parameters()},
        "anchors": dict(brain.regularizers["l2sp"].state_dict()),
        "optimizer_step": brain.optimizer_step,
        "valid_accuracy": brain.valid_stats["accuracy"],
    }
    torch.save(state, os.path.join(out_folder, f"rank{rank}.pt"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
