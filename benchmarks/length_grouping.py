#!/usr/bin/env python3
"""Training steps on random batches and on batches grouped by duration, side by side: padding and time per step.

Builds the SynthSpeech intent ``finetune`` recipe's modules from its YAML
(randomly initialized: the time does not depend on the weights), draws
``--steps`` batches of 8 from a k-shot manifest with replacement, as the
recipes do, once with SpeechBrain's ``ReproducibleRandomSampler`` and once
with :class:`~speechbrain_xfer.data.sampling.LengthGroupedSampler` (same
seed), and runs full training steps on both, alternating. Prints the share
of each batch that is padding and the mean milliseconds per step.

    python benchmarks/length_grouping.py --data results/demo/data/intent [--steps 40] [--threads 1]
"""

import argparse

import speechbrain as sb
import torch
from intent_step import PARTS, recipe_modules_and_audio, time_step
from speechbrain.dataio.sampler import ReproducibleRandomSampler

from speechbrain_xfer.data.sampling import LengthGroupedSampler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a SynthSpeech intent folder (with train_k10.csv)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hp, wavs = recipe_modules_and_audio(args.data)
    durations = [len(w) / 16000 for w in wavs]
    draws = {"seed": 1, "replacement": True, "num_samples": 8 * args.steps}
    samplers = {
        "random batches": ReproducibleRandomSampler(wavs, **draws),
        "grouped by duration": LengthGroupedSampler(wavs, durations, group_size=8, **draws),
    }
    batches, padding = {}, {}
    for name, sampler in samplers.items():
        order = list(sampler)
        batches[name] = [
            sb.dataio.batch.PaddedBatch([{"sig": wavs[i]} for i in order[s : s + 8]]).sig
            for s in range(0, len(order), 8)
        ]
        padding[name] = 1 - sum(float(b.lengths.mean()) for b in batches[name]) / len(batches[name])
    optimizer = torch.optim.AdamW([*hp["encoder"].parameters(), *hp["heads"].parameters()], lr=1e-4)
    times = {name: dict.fromkeys(PARTS, 0.0) for name in samplers}
    for step in range(args.steps):
        for name in samplers:
            batch = batches[name][step]
            time_step(hp, hp["wav_augment"], optimizer, batch.data, batch.lengths, times[name])
    print(f"intent finetune steps on train_k10, batch of 8, {args.threads} thread(s), {args.steps} steps each:")
    totals = {}
    for name in samplers:
        totals[name] = sum(times[name].values()) / args.steps * 1000
        print(f"  {name:20s} padding {padding[name]:5.1%} of each batch, {totals[name]:6.1f} ms per step")
    print(f"  time ratio (grouped / random) {totals['grouped by duration'] / totals['random batches']:.2f}")


if __name__ == "__main__":
    main()
