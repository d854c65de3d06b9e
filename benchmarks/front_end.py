#!/usr/bin/env python3
"""SpeechBrain's DropFreq and Fbank against speechbrain_xfer's, side by side: time per batch and output difference.

Each pair gets the same batches of random waveforms and the same random
draws (the generator is re-seeded before each call). As in training, each
batch has its own length, drawn between 0.6 and 1.4 times ``--seconds``
(a convolution can pay a set-up cost per new shape). Prints each one's
median time per batch, the ratio, and the largest difference between the
outputs.

    python benchmarks/front_end.py [--batch 8] [--seconds 2.4] [--repeats 20] [--threads 1]
"""

import argparse
import statistics
import time

import torch
from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq
from speechbrain.lobes.features import Fbank as SpeechBrainFbank

from speechbrain_xfer.data.augment import DropFreq
from speechbrain_xfer.lobes.features import Fbank


def compare(label, modules, args):
    """Times ``modules`` ({name: module}, SpeechBrain's first) on the same batches; prints the figures."""
    times = {name: [] for name in modules}
    worst = 0.0
    lengths = torch.Generator().manual_seed(0)
    for repeat in range(args.repeats):
        length = int(args.seconds * 16000 * (0.6 + 0.8 * float(torch.rand(1, generator=lengths))))
        x = torch.randn(args.batch, length) * 0.1
        outputs = []
        for name, module in modules.items():
            torch.manual_seed(repeat)
            start = time.perf_counter()
            outputs.append(module(x))
            times[name].append(time.perf_counter() - start)
        worst = max(worst, float((outputs[0] - outputs[1]).abs().max()))
    medians = [statistics.median(t) * 1000 for t in times.values()]
    print(f"{label} on {args.batch} x {args.seconds} s (+-40 %), {args.threads} thread(s), {args.repeats} batches:")
    for name, ms in zip(modules, medians):
        print(f"  {name:17s} {ms:7.1f} ms per batch (median)")
    print(f"  speed-up          {medians[0] / medians[1]:7.1f}x")
    print(f"  largest output difference {worst:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {
        "drop_freq_low": 0,
        "drop_freq_high": 1,
        "drop_freq_count_low": 1,
        "drop_freq_count_high": 3,
        "drop_freq_width": 0.05,
    }
    compare(
        "DropFreq", {"speechbrain": SpeechBrainDropFreq(**settings), "speechbrain_xfer": DropFreq(**settings)}, args
    )
    compare("Fbank (40 mels)", {"speechbrain": SpeechBrainFbank(n_mels=40), "speechbrain_xfer": Fbank(n_mels=40)}, args)


if __name__ == "__main__":
    main()
