#!/usr/bin/env python3
"""SpeechBrain's DropFreq against speechbrain_xfer's, side by side: time per batch and output difference.

Both get the same batches of random waveforms and the same random draws
(the generator is re-seeded before each call); prints each one's median
time per batch, the ratio, and the largest difference between the outputs.

    python benchmarks/augment.py [--batch 8] [--seconds 2.4] [--repeats 20] [--threads 1]
"""

import argparse
import statistics
import time

import torch
from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq

from speechbrain_xfer.data.augment import DropFreq


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"drop_freq_low": 0, "drop_freq_high": 1, "drop_freq_count_low": 1, "drop_freq_count_high": 3,
                "drop_freq_width": 0.05}  # fmt: skip
    augmenters = {"speechbrain": SpeechBrainDropFreq(**settings), "speechbrain_xfer": DropFreq(**settings)}
    times = {name: [] for name in augmenters}
    worst = 0.0
    for repeat in range(args.repeats):
        x = torch.randn(args.batch, int(args.seconds * 16000)) * 0.1
        outputs = {}
        for name, augment in augmenters.items():
            torch.manual_seed(repeat)
            start = time.perf_counter()
            outputs[name] = augment(x)
            times[name].append(time.perf_counter() - start)
        worst = max(worst, float((outputs["speechbrain"] - outputs["speechbrain_xfer"]).abs().max()))
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"DropFreq on {args.batch} x {args.seconds} s, {args.threads} thread(s), {args.repeats} batches:")
    for name, ms in medians.items():
        print(f"  {name:17s} {ms:7.1f} ms per batch (median)")
    print(f"  speed-up          {medians['speechbrain'] / medians['speechbrain_xfer']:7.1f}x")
    print(f"  largest output difference {worst:.2e}")


if __name__ == "__main__":
    main()
