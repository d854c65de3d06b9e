#!/usr/bin/env python3
"""Scaling of one training epoch with the corpus size: epoch time, time per utterance, peak memory.

The SynthSpeech KWS recipe (``recipes/SynthSpeech/KWS``, ``hparams/scratch.yaml``)
trains one epoch on the ``words/target`` corpus at 1x, 2x and 4x its size,
side by side in one run, each size in a fresh process. An epoch is
``ceil(training utterances / batch size)`` batches, so that it covers the
training set once (drawn with replacement, as the recipe does). Prints, per
size: the training utterances, the training epoch's wall time (the TRAIN
stage alone: the validation and test passes that follow are not counted),
the time per utterance (flat when the cost is linear), its ratio to the
smallest size's, and the process's peak resident memory (``ru_maxrss``) at
the end of the training epoch.

    python benchmarks/scaling.py [--sizes 1,2,4] [--speakers 20] [--batch-size 8] [--threads 1] [--data DIR] [--keep]

The sizes are SynthOptions' ``scale`` (utterances per training speaker), not
its ``num_speakers``: the speakers, and so the validation and test splits,
stay the same, and only the training split grows. Without ``--data`` the
corpora are synthesized into a temporary folder (about a minute on two
cores); with it, ``DIR/x<size>/words/target`` is reused when it is there and
synthesized when it is not.
"""

import argparse
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time

import torch
from timed_brain import TimedBrain

from speechbrain_xfer.data.dataio import prepare_classification
from speechbrain_xfer.experiment import run_experiment
from speechbrain_xfer.synthspeech.synth import SynthOptions, plan_corpus, read_manifest, synthesize_subset

HPARAMS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "SynthSpeech", "KWS", "hparams", "scratch.yaml"
)
SUBSET = "words/target"


def train_one_epoch(argv, threads, result_path, console_path):
    """Runs the recipe in this (fresh) process and writes what TimedBrain measured to ``result_path``."""
    # The recipe's console output goes to a file, so that only the table reaches the terminal.
    with open(console_path, "w") as console:
        os.dup2(console.fileno(), 1)
        os.dup2(console.fileno(), 2)
    if threads:
        torch.set_num_threads(threads)
    brain, _ = run_experiment(TimedBrain, prepare_classification, argv)
    with open(result_path, "w") as f:
        measured = {"time_s": brain.epoch_times[-1], "steps": brain.epoch_steps, "max_rss_mb": brain.train_max_rss_mb}
        json.dump(measured, f)


def corpus(root, size, speakers):
    """Synthesizes (or finds) the ``words/target`` corpus at ``size`` times the default training reps."""
    options = SynthOptions(seed=11, num_speakers=speakers, scale=size)
    folder = os.path.join(root, f"x{size:g}", SUBSET)
    synthesize_subset(folder, plan_corpus("words", options)[SUBSET], options, "words", jobs=2, progress=False)
    return folder


def measure(folder, work, args):
    """Trains one epoch on ``folder`` in a child process; returns its measurements."""
    train_size = len(read_manifest(os.path.join(folder, "train.csv")))
    steps = math.ceil(train_size / args.batch_size)
    output = os.path.join(work, "runs", os.path.basename(os.path.dirname(os.path.dirname(folder))))
    argv = [
        HPARAMS,
        "--data_folder",
        folder,
        "--output_folder",
        output,
        "--number_of_epochs",
        "1",
        "--steps_per_epoch",
        str(steps),
        "--batch_size",
        str(args.batch_size),
        "--noprogressbar",
    ]
    result_path = os.path.join(work, "result.json")
    os.makedirs(output, exist_ok=True)
    console_path = os.path.join(output, "console.txt")
    # A fresh process per size: ru_maxrss is a running maximum, and torch's caches carry over.
    run_args = (argv, args.threads, result_path, console_path)
    child = multiprocessing.get_context("spawn").Process(target=train_one_epoch, args=run_args)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(
            f"error: the training run on {folder} failed (exit code {child.exitcode}); its output "
            f"is in {console_path} (run with --keep to keep it)"
        )
    with open(result_path) as f:
        result = json.load(f)
    os.remove(result_path)
    return {"train": train_size, "utterances": steps * args.batch_size, **result}


def print_table(sizes, results, args):
    print(
        f"KWS scratch.yaml, one epoch, batch {args.batch_size}, {args.threads or 'default'} torch threads; "
        f"time = TRAIN stage only; memory = peak RSS at the end of the training epoch"
    )
    print(f"{'size':>5}{'train utts':>12}{'steps':>7}{'epoch s':>9}{'ms/utt':>8}{'ratio':>7}{'peak RSS MB':>13}")
    base = None
    for size, r in zip(sizes, results):
        per_utt = r["time_s"] / r["utterances"]
        base = base or per_utt
        print(
            f"{size:>4g}x{r['train']:>12}{r['steps']:>7}{r['time_s']:>9.2f}{per_utt * 1e3:>8.2f}"
            f"{per_utt / base:>7.2f}{r['max_rss_mb']:>13.0f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4", help="corpus sizes, as multiples of the smallest (default 1,2,4)")
    parser.add_argument("--speakers", type=int, default=20, help="SynthSpeech speakers (20: 280 utterances at 1x)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the training runs")
    parser.add_argument("--data", help="a folder for the corpora (x1/, x2/, ...): reused, or synthesized into")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (corpora and run outputs)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="sbx_scaling_")
    start = time.perf_counter()
    try:
        folders = [corpus(args.data or os.path.join(work, "data"), size, args.speakers) for size in sizes]
        synthesized = time.perf_counter() - start
        results = [measure(folder, work, args) for folder in folders]
        print_table(sizes, results, args)
        print(
            f"wall time: {synthesized:.0f} s preparing the corpora, {time.perf_counter() - start - synthesized:.0f}"
            f" s training (with validation, test and start-up)"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
