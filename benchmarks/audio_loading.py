#!/usr/bin/env python3
"""Data-loading throughput of real clips stored at 48 kHz against the same clips at 16 kHz, side by side.

Takes ``--clips`` RAVDESS clips (16 kHz, as in ``../shared/data/ravdess``), writes a 48 kHz copy of each (the
rate of the RAVDESS download), and reads both through the recipes' own datasets
(``classification_datasets`` inside ``manifest_checks``, as a run builds them) for ``--epochs`` epochs:

- ``16k``: the 16 kHz clips;
- ``48k, no cache``: the 48 kHz clips resampled every time they are read (the behaviour without a cache folder);
- ``48k, cached``: the 48 kHz clips resampled on their first read and kept in the run's cache folder
  (``ResampledAudioCache``): epochs 2+ read the kept 16 kHz audio.

Prints audio-seconds read per second on the first epoch and on the later ones (median), and the ratios to
``16k``. One thread, as a data-loading worker has.

    python benchmarks/audio_loading.py [--data ../shared/data/ravdess] [--clips 240] [--epochs 3]
"""

import argparse
import glob
import os
import statistics
import tempfile
import time

import soundfile as sf
import torch
import torchaudio

from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.data.validation import manifest_checks


def default_data():
    root = os.environ.get("SBX_REAL_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    return os.path.join(root, "ravdess")


def write_copies(clips, folder):
    """Manifests of the 16 kHz ``clips`` and of 48 kHz copies of them written to ``folder``."""
    rows16, rows48 = [], []
    for i, path in enumerate(clips):
        audio, rate = sf.read(path, dtype="float32")
        up = torchaudio.functional.resample(torch.from_numpy(audio), rate, 48000).numpy()
        copy = os.path.join(folder, f"{i:04d}.wav")
        sf.write(copy, up, 48000, subtype="PCM_16")
        label = os.path.basename(path).split("-")[2]  # RAVDESS's emotion field
        rows16.append(f"c{i},{os.path.abspath(path)},{sf.info(path).duration:.3f},{label}")
        rows48.append(f"c{i},{copy},{sf.info(copy).duration:.3f},{label}")
    manifests = {}
    for name, rows in (("16k", rows16), ("48k", rows48)):
        path = os.path.join(folder, f"{name}.csv")
        with open(path, "w") as f:
            f.write("ID,wav,duration,emotion\n" + "\n".join(rows) + "\n")
        manifests[name] = path
    return manifests


def epoch_rates(manifest, cache_folder, epochs, save_folder):
    """Audio-seconds read per second in each of ``epochs`` passes over the manifest's clips."""
    csvs = {"train": manifest, "valid": manifest, "test": manifest}
    with manifest_checks(progress=False, cache_folder=cache_folder):
        datasets, _ = classification_datasets("", csvs, ["emotion"], save_folder)
    rates = []
    for _ in range(epochs):
        start, seconds = time.perf_counter(), 0.0
        for item in datasets["train"]:
            seconds += item["sig"].shape[0] / 16000
        rates.append(seconds / (time.perf_counter() - start))
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="a RAVDESS speech folder (Actor_01/...)")
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = sorted(glob.glob(os.path.join(args.data, "Actor_*", "*.wav")))[: args.clips]
    if not clips:
        raise SystemExit(f"no RAVDESS clips under {args.data}/Actor_*/; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        manifests = write_copies(clips, tmp)
        runs = {
            "16k": (manifests["16k"], os.path.join(tmp, "cache16")),
            "48k, no cache": (manifests["48k"], None),
            "48k, cached": (manifests["48k"], os.path.join(tmp, "cache48")),
        }
        results = {
            name: epoch_rates(manifest, cache, args.epochs, os.path.join(tmp, f"save{i}"))
            for i, (name, (manifest, cache)) in enumerate(runs.items())
        }
    print(f"{len(clips)} RAVDESS clips ({args.data}), {args.epochs} epochs, 1 thread; audio-seconds read per second:")
    base_first, base_later = results["16k"][0], statistics.median(results["16k"][1:])
    for name, rates in results.items():
        later = statistics.median(rates[1:])
        print(
            f"  {name:14s} epoch 1 {rates[0]:8.0f}   epochs 2+ {later:8.0f}   "
            f"(x{rates[0] / base_first:.2f} and x{later / base_later:.2f} of 16k)"
        )
    print(
        f"48k cached/16k epochs 2+ throughput ratio: {statistics.median(results['48k, cached'][1:]) / base_later:.2f}"
    )
    uncached = statistics.median(results["48k, no cache"][1:])
    print(
        f"48k cached/48k uncached epochs 2+ speed-up: {statistics.median(results['48k, cached'][1:]) / uncached:.1f}x"
    )


if __name__ == "__main__":
    main()
