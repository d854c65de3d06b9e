#!/usr/bin/env python3
"""One SynthSpeech intent fine-tuning step, part by part, with SpeechBrain's DropFreq and with ours.

Builds the intent ``finetune`` recipe's modules from its YAML (randomly
initialized: the time does not depend on the weights), takes batches of 8
training utterances of a SynthSpeech intent corpus, and times each part of
a training step (augmentation, filterbanks and normalization, encoder
forward, heads, backward, optimizer step), alternating the recipe's
augmenter with one where ``DropFreq`` is SpeechBrain's own, on the same
batches. Prints the mean milliseconds per step of each part for both.

    python benchmarks/intent_step.py --data results/demo/data/intent [--steps 8] [--threads 1]
"""

import argparse
import copy
import os
import tempfile
import time

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.augment.time_domain import DropFreq as SpeechBrainDropFreq

from speechbrain_xfer.data.dataio import read_mono_16k
from speechbrain_xfer.synthspeech.synth import read_manifest

YAML = os.path.join(os.path.dirname(__file__), "..", "recipes", "SynthSpeech", "intent", "hparams", "finetune.yaml")
PARTS = ("augment", "fbank+norm", "encoder", "heads", "backward", "optimizer")


def speechbrain_augmenter(augmenter):
    """A copy of ``augmenter`` whose DropFreq is SpeechBrain's, with the same settings."""
    other = copy.deepcopy(augmenter)
    for key, augment in other.augmentations.items():
        if type(augment).__name__ == "DropFreq":
            reference = SpeechBrainDropFreq()
            reference.__dict__.update({k: v for k, v in vars(augment).items() if not k.startswith("_")})
            other.augmentations[key] = reference
    return other


def time_step(hp, augmenter, optimizer, wavs, lens, times):
    def timed(part, fn):
        start = time.perf_counter()
        out = fn()
        times[part] += time.perf_counter() - start
        return out

    x, lengths = timed("augment", lambda: augmenter(wavs, lens))
    feats = timed("fbank+norm", lambda: hp["mean_var_norm"](hp["compute_features"](x), lengths))
    encoded = timed("encoder", lambda: hp["encoder"](feats, lengths))
    loss = timed("heads", lambda: sum(head(encoded, lengths).mean() for head in hp["heads"].values()))
    timed("backward", loss.backward)
    timed("optimizer", lambda: (optimizer.step(), optimizer.zero_grad()))


def recipe_modules_and_audio(data, utterances=None):
    """The ``finetune`` recipe's hparams (randomly initialized modules) and the audio of ``data``'s train_k10.csv.

    ``utterances`` keeps the manifest's first ones only; None reads them all.
    """
    with open(YAML) as f, tempfile.TemporaryDirectory() as out:
        hp = load_hyperpyyaml(f, {"data_folder": data, "pretrained_source": data, "output_folder": out})
    rows = read_manifest(os.path.join(data, "train_k10.csv"))[:utterances]
    return hp, [read_mono_16k(r["wav"].replace("$data_root", data)) for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a SynthSpeech intent folder (with train_k10.csv)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hp, wavs = recipe_modules_and_audio(args.data, 8 * args.steps)
    batches = [sb.dataio.batch.PaddedBatch([{"sig": w} for w in wavs[i : i + 8]]).sig for i in range(0, len(wavs), 8)]
    params = [*hp["encoder"].parameters(), *hp["heads"].parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    augmenters = {
        "SpeechBrain DropFreq": speechbrain_augmenter(hp["wav_augment"]),
        "speechbrain_xfer DropFreq": hp["wav_augment"],
    }
    times = {name: dict.fromkeys(PARTS, 0.0) for name in augmenters}
    for batch in batches:
        for name, augmenter in augmenters.items():
            time_step(hp, augmenter, optimizer, batch.data, batch.lengths, times[name])
    print(f"intent finetune step, batch of 8, {args.threads} thread(s), mean of {len(batches)} steps (ms):")
    print(f"  {'':26s}" + "".join(f"{p:>11s}" for p in PARTS) + f"{'total':>11s}")
    for name, parts in times.items():
        ms = [parts[p] / len(batches) * 1000 for p in PARTS]
        print(f"  {name:26s}" + "".join(f"{m:11.1f}" for m in ms) + f"{sum(ms):11.1f}")


if __name__ == "__main__":
    main()
