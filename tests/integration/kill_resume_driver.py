"""Runs a recipe's ``train.py`` in this process; the process may SIGKILL itself at a chosen point.

    python kill_resume_driver.py N path/to/train.py hparams/x.yaml --arg value ...
    python kill_resume_driver.py step:K path/to/train.py hparams/x.yaml --arg value ...

Every ``torch.save`` of a checkpoint save (model, optimizer, regularizer and
RNG states) is counted; with N > 0 the N-th writes half its bytes, and the
process then sends itself SIGKILL: what a kill in the middle of a save leaves
on disk. With ``step:K`` the process kills itself right after its K-th
optimizer step, between saves: a kill at a point of training that does not
depend on how fast the machine is that day. With N = 0 the run is not
touched, and prints how many files it saved and how many optimizer steps it
took, so that a test can pick N and K.
"""

import io
import os
import runpy
import signal
import sys

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


def kill_at_the_nth_save(n):
    """Wraps ``torch.save``; returns the list that counts the calls."""
    original, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) != n:
            return original(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        original(obj, buffer, *args, **kwargs)
        with open(f, "wb") as out:
            out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            out.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save
    return calls


def kill_after_the_kth_step(k):
    """Counts every optimizer's steps; returns the list that counts them."""
    steps = []

    def hook(optimizer, args, kwargs):
        steps.append(optimizer)
        if len(steps) == k:
            os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_post_hook(hook)
    return steps


def main(argv):
    point, script, *args = argv
    at_step = point.startswith("step:")
    steps = kill_after_the_kth_step(int(point.removeprefix("step:")) if at_step else 0)
    calls = kill_at_the_nth_save(0 if at_step else int(point))
    script = os.path.abspath(script)
    os.chdir(os.path.dirname(script))  # recipes name their hparams/ relative to their folder
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
    print(f"torch.save calls: {len(calls)}")
    print(f"optimizer steps: {len(steps)}")


if __name__ == "__main__":
    main(sys.argv[1:])
