#!/usr/bin/env python3
"""What in real recordings a synthetic source has not seen: its own test set, changed one way at a time.

An exported classifier (``sbx export`` folder, e.g. the demo's source-words stage) is scored on its own
test manifest as it is, and with each difference between SynthSpeech clips and real ones such as FSDD's
applied alone and together:

- ``8 kHz band``: the audio goes through 8 kHz and back (nothing above 4 kHz, as in FSDD or telephone speech);
- ``trimmed``: the silence around the word is cut (FSDD clips start and end at the word; SynthSpeech's
  word clips are padded to 1 s);
- ``noise 20 dB``: white noise at 20 dB SNR (a quiet room, a cheap microphone).

A large drop under one change says the source relies on what that change removes.

    python benchmarks/channel_gap.py results/demo/pretrain/words/encoder \\
        results/demo/data/words/source/test.csv --target word
"""

import argparse
import csv
import os

import torch

from speechbrain_xfer.data.augment import BandLimit
from speechbrain_xfer.data.dataio import read_mono_16k
from speechbrain_xfer.hub.loading import load_export


def trimmed(wav, threshold_db=-35.0, frame=160):
    """``wav`` without the frames before the first and after the last one within ``threshold_db`` of its peak."""
    frames = wav[: len(wav) // frame * frame].reshape(-1, frame)
    level = 10 * torch.log10(frames.pow(2).mean(dim=1) + 1e-10)
    loud = torch.nonzero(level > level.max() + threshold_db).flatten()
    return wav[int(loud[0]) * frame : (int(loud[-1]) + 1) * frame]


def with_noise(wav, snr_db=20.0, generator=None):
    noise = torch.randn(wav.shape, generator=generator)
    scale = wav.pow(2).mean().sqrt() / noise.pow(2).mean().sqrt() / 10 ** (snr_db / 20)
    return wav + scale * noise


def accuracy(model, wavs, labels, batch=32):
    right = 0
    for start in range(0, len(wavs), batch):
        chunk = wavs[start : start + batch]
        lengths = torch.tensor([len(w) for w in chunk], dtype=torch.float)
        padded = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True)
        _, _, _, predicted = model.classify_batch(padded, lengths / lengths.max())
        right += sum(p == label for p, label in zip(predicted, labels[start : start + batch]))
    return 100.0 * right / len(wavs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="an sbx export folder of a classifier")
    parser.add_argument("manifest", help="its test manifest (CSV with ID, wav and the label column)")
    parser.add_argument("--target", default="word", help="the label column (default: word)")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N items (default: all)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_export(args.export, savedir=os.path.join(args.export, ".channel_gap"))
    with open(args.manifest, newline="") as f:
        rows = list(csv.DictReader(f))[: args.limit or None]
    root = os.path.dirname(os.path.abspath(args.manifest))
    wavs = [read_mono_16k(row["wav"].replace("$data_root", root)) for row in rows]
    labels = [row[args.target] for row in rows]
    band = BandLimit(rates=[8000])
    noise = torch.Generator().manual_seed(0)
    conditions = {
        "as synthesized": lambda w: w,
        "8 kHz band": lambda w: band(w.unsqueeze(0))[0],
        "trimmed": trimmed,
        "noise 20 dB": lambda w: with_noise(w, 20.0, noise),
        "8 kHz band + trimmed": lambda w: band(trimmed(w).unsqueeze(0))[0],
    }
    print(f"{args.export} on {len(rows)} items of {args.manifest} ({args.target}), test accuracy (%):")
    with torch.no_grad():
        for name, change in conditions.items():
            print(f"  {name:22s} {accuracy(model, [change(w) for w in wavs], labels):5.1f}")


if __name__ == "__main__":
    main()
