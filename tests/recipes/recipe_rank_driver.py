"""Runs a recipe's train.py in this process (under torchrun: one per rank) and saves the weights each rank has
when training ends, before the test split reloads the best checkpoint on every rank.

    python recipe_rank_driver.py OUT_DIR RECIPE_DIR train.py hparams/x.yaml [overrides...]
"""

import os
import runpy
import sys

import torch

from speechbrain_xfer.brains import UtteranceClassifierBrain

FIT = UtteranceClassifierBrain.fit


def fit_and_save(self, *args, **kwargs):
    result = FIT(self, *args, **kwargs)
    out_dir = os.environ["RANK_WEIGHTS_DIR"]
    rank = int(os.environ.get("RANK", 0))
    state = {
        f"{name}.{key}": value.detach().clone()
        for name, module in self.modules.items()
        for key, value in module.state_dict().items()
    }
    anchors = {key: value.clone() for name, reg in self.regularizers.items() for key, value in reg.state_dict().items()}
    torch.save(
        {"params": state, "anchors": anchors, "optimizer_step": self.optimizer_step},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    return result


def main():
    out_dir, recipe_dir, script, *argv = sys.argv[1:]
    os.environ["RANK_WEIGHTS_DIR"] = out_dir
    UtteranceClassifierBrain.fit = fit_and_save
    os.chdir(recipe_dir)
    sys.argv = [script, *argv]
    sys.path.insert(0, recipe_dir)
    runpy.run_path(script, run_name="__main__")
    # Tear the process group down before the interpreter does: gloo's threads outliving it can abort a rank at
    # exit ("terminate called without an active exception"), which failed this test once under load.
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
