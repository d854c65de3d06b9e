#!/usr/bin/env python3
"""The SLURM launcher's cost against the local one: the same tiny grid through ``sbx curve`` both ways.

The grid is the SLURM test's: keyword spotting on a tiny SynthSpeech corpus (made here), scratch and
l2sp (from a random ConvEncoder of the recipe's shape: the cost does not depend on its weights), 1 clip
per word, 2 seeds, 2 epochs of 2 steps; one thread per run. The two launchers alternate in rounds, each
round in fresh output folders. Needs a SLURM cluster that answers (``tests/slurm/cluster.sh start``).

Prints the wall time of each launcher's grid (median over rounds), the difference per run, and the
submit-to-start latency of the jobs that found a free CPU, as SLURM recorded it (``squeue`` submit and
start times, one-second resolution). The difference holds the scheduler's latency, the poll interval, and
the imports each job pays (the local launcher forks its runs from a process that imported torch and
SpeechBrain once).

    python benchmarks/slurm_overhead.py [--rounds 3] [--poll 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.synthspeech.synth import SynthOptions, synthesize_task

RECIPE_ARGS = "--number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"


def grid(corpus, pretrained, out, launcher, poll):
    command = [sys.executable, "-m", "speechbrain_xfer.cli", "curve", "--task", "kws", "--shots", "1"]
    command += ["--methods", "scratch,l2sp", "--seeds", "2", "--data-folder", corpus, "--out", out]
    command += ["--pretrained-source-kws", pretrained, "--recipe-args", RECIPE_ARGS]
    if launcher == "local":
        command += ["--jobs", "2", "--threads", "1"]
    else:
        command += ["--launcher", "slurm", "--slurm-cpus-per-run", "1", "--slurm-poll", str(poll)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def latencies(out):
    """Submit-to-start seconds of the jobs of the grid in ``out`` (squeue keeps ended jobs a while)."""
    ids = [json.loads(p.read_text())["job_id"] for p in Path(out).glob("runs/*/*/*/*/slurm_job.json")]
    listing = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i %V %S", "-j", ",".join(ids)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds = []
    for line in listing.splitlines():
        _, submitted, started = line.split()
        seconds.append((datetime.fromisoformat(started) - datetime.fromisoformat(submitted)).total_seconds())
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=1.0, help="--slurm-poll of the SLURM grid (seconds)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        synthesize_task("words", folder, SynthOptions(seed=7, num_speakers=8, scale=0.25), jobs=2, progress=False)
        pretrained = os.path.join(folder, "pretrained")
        os.makedirs(pretrained)
        encoder = ConvEncoder(40, channels=[128, 192, 192], strides=[2, 2, 1], rnn_dim=160, dropout=0.15)
        torch.save(encoder.state_dict(), os.path.join(pretrained, "encoder.ckpt"))
        times, waits = {"local": [], "slurm": []}, []
        for round_ in range(args.rounds):
            for launcher in ("local", "slurm"):
                out = os.path.join(folder, f"{launcher}{round_}")
                times[launcher].append(grid(folder, pretrained, out, launcher, args.poll))
                if launcher == "slurm":
                    waits += latencies(out)
    local, slurm = (statistics.median(times[k]) for k in ("local", "slurm"))
    print(f"tiny grid: 4 KWS runs (scratch, l2sp x 2 seeds), 2 at a time, 1 thread each; {args.rounds} rounds, median")
    print(f"local launcher (--jobs 2):          {local:6.1f} s")
    print(f"slurm launcher (--slurm-poll {args.poll:g}):   {slurm:6.1f} s")
    # Two runs at a time: the grid is two waves of runs, and each wave pays the launcher's cost once.
    print(f"slurm - local, per run:             {(slurm - local) / 2:6.1f} s (two waves of two runs)")
    first = sorted(waits)[: len(waits) // 2]  # the first wave's jobs found a free CPU; the second's waited for one
    print(f"submit-to-start of a job with a free CPU: mean {statistics.mean(first):.1f} s (squeue, 1 s steps)")
    print(f"slurm/local grid time ratio: {slurm / local:.2f}")


if __name__ == "__main__":
    main()
