"""Runs a recipe's train.py in this process (under torchrun: one per rank) and saves the weights each rank has
when training ends, before the test split reloads the best checkpoint on every rank, and the names of the
process's threads that are left after every other exit handler has run.

    python recipe_rank_driver.py OUT_DIR RECIPE_DIR train.py hparams/x.yaml [overrides...]
"""

import atexit
import os
import pathlib
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


def write_thread_names(out_dir):
    """Linux names each thread in /proc; gloo's worker threads are "pt_gloo_runloop"."""
    tasks = pathlib.Path("/proc/self/task")
    if tasks.is_dir():
        names = sorted((task / "comm").read_text().strip() for task in tasks.iterdir())
        rank = int(os.environ.get("RANK", 0))
        pathlib.Path(out_dir, f"threads_at_exit_rank{rank}.txt").write_text("\n".join(names) + "\n")


def main():
    out_dir, recipe_dir, script, *argv = sys.argv[1:]
    os.environ["RANK_WEIGHTS_DIR"] = out_dir
    # Registered before the recipe registers its own, so it runs after them (exit handlers run last-in first-out).
    atexit.register(write_thread_names, out_dir)
    UtteranceClassifierBrain.fit = fit_and_save
    os.chdir(recipe_dir)
    sys.argv = [script, *argv]
    sys.path.insert(0, recipe_dir)
    # The process group is torn down by run_experiment's exit handler, as in any recipe run.
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
