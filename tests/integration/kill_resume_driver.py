"""Runs a recipe's ``train.py`` in this process; with N > 0 the process kills itself half way through a file.

    python kill_resume_driver.py N path/to/train.py hparams/x.yaml --arg value ...

Every ``torch.save`` of a checkpoint save (model, optimizer, regularizer and
RNG states) is counted; the N-th writes half its bytes, and the process then
sends itself SIGKILL: what a kill in the middle of a save leaves on disk. With
N = 0 the run is not touched, and prints how many files it saved, so that a
test can pick N.
"""

import io
import os
import runpy
import signal
import sys

import torch


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


def main(argv):
    n, script, *args = argv
    calls = kill_at_the_nth_save(int(n))
    script = os.path.abspath(script)
    os.chdir(os.path.dirname(script))  # recipes name their hparams/ relative to their folder
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
    print(f"torch.save calls: {len(calls)}")


if __name__ == "__main__":
    main(sys.argv[1:])
