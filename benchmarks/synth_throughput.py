#!/usr/bin/env python3
"""Synthesis throughput of SynthSpeech: utterances per second, per task,
with 1 and 2 worker processes, measured side by side in one run.

    python benchmarks/synth_throughput.py [--speakers 20]
"""

import argparse
import os
import tempfile
import time

from speechbrain_xfer.synthspeech.synth import SynthOptions, plan_corpus, synthesize_subset

SUBSETS = (("words", "words/target"), ("intent", "intent"), ("emotion", "emotion"), ("asr", "asr/source"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    options = SynthOptions(seed=99, num_speakers=args.speakers, scale=args.scale)
    print(f"{'subset':<14}{'utterances':>11}{'audio h':>9}{'1 job utt/s':>13}{'2 jobs utt/s':>14}{'speed-up':>10}")
    for task, subset in SUBSETS:
        utts = plan_corpus(task, options)[subset]
        rates = []
        for jobs in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                report = synthesize_subset(os.path.join(tmp, subset), utts, options, task, jobs=jobs, progress=False)
                rates.append(len(utts) / (time.perf_counter() - start))
        print(
            f"{subset:<14}{len(utts):>11}{report['hours']:>9.2f}{rates[0]:>13.0f}{rates[1]:>14.0f}"
            f"{rates[1] / rates[0]:>10.2f}"
        )


if __name__ == "__main__":
    main()
