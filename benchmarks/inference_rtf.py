#!/usr/bin/env python3
"""Real-time factor of exported models on the CPU: ``classify_file`` / ``transcribe_file`` time over audio time.

For each export folder given, loads it with its SpeechBrain inference class
(as ``sbx classify`` / ``sbx transcribe`` do) and runs it on the audio files,
one file at a time (what a user calling ``classify_file`` gets), after one
warm-up file. Prints, per model and thread count: files, audio seconds,
processing seconds, the real-time factor (RTF < 1: faster than real time)
and its inverse.

    python benchmarks/inference_rtf.py MODEL [MODEL ...] --audio DIR_OR_CSV [--files 50] [--threads 1,2]

``--audio`` is a folder of .wav files or a SpeechBrain manifest (``wav``
column, ``$data_root`` replaced by the manifest's folder), e.g. the demo's
``results/demo/data/intent/test.csv``.
"""

import argparse
import csv
import glob
import os
import tempfile
import time

import soundfile
import torch

from speechbrain_xfer.hub.inference import read_audio_file
from speechbrain_xfer.hub.loading import exported_interface, load_export


def audio_files(source, count):
    if os.path.isdir(source):
        return sorted(glob.glob(os.path.join(source, "**", "*.wav"), recursive=True))[:count]
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))[:count]
    return [row["wav"].replace("$data_root", os.path.dirname(os.path.abspath(source))) for row in rows]


def run_model(model, interface, path):
    wav = read_audio_file(model, path)
    with torch.no_grad():
        if interface == "EncoderASR":
            model.transcribe_batch(wav.unsqueeze(0), torch.ones(1))
        else:
            model.classify_batch(wav.unsqueeze(0), torch.ones(1))


def measure(model_dir, files, threads):
    torch.set_num_threads(threads)
    interface = exported_interface(model_dir)
    with tempfile.TemporaryDirectory() as savedir:
        model = load_export(model_dir, savedir=savedir)
        run_model(model, interface, files[0])  # warm-up
        start = time.perf_counter()
        for path in files:
            run_model(model, interface, path)
        seconds = time.perf_counter() - start
    audio = sum(soundfile.info(path).duration for path in files)
    return interface, audio, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="sbx export folders")
    parser.add_argument("--audio", required=True, help="folder of .wav files or a manifest CSV")
    parser.add_argument("--files", type=int, default=50, help="files per model (default: 50)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to try (default: 1,2)")
    args = parser.parse_args()
    files = audio_files(args.audio, args.files)
    if not files:
        raise SystemExit(f"no audio files in {args.audio}")
    print(
        f"{'model':<40} {'class':<22} {'threads':>7} {'files':>5} {'audio s':>8} {'proc s':>7} "
        f"{'RTF':>7} {'x real time':>11}"
    )
    for model_dir in args.models:
        for threads in (int(t) for t in args.threads.split(",")):
            interface, audio, seconds = measure(model_dir, files, threads)
            print(
                f"{model_dir[-40:]:<40} {interface:<22} {threads:>7} {len(files):>5} {audio:>8.1f} "
                f"{seconds:>7.2f} {seconds / audio:>7.4f} {audio / seconds:>11.1f}"
            )


if __name__ == "__main__":
    main()
