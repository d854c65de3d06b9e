#!/usr/bin/env python3
"""Linear probing with and without the frozen-encoder feature cache: epoch times and output differences.

Three UtteranceClassifierBrains with the same frozen ConvEncoder (channels
128-128-256, BiGRU 128) and the same head start train on the same batches
in one run: one encodes every batch; two read the encoder outputs from the
cache (filled in their first epoch), one from disk every time
(``memory_mb=0``), one from memory after the first epoch (the default).
Prints each training epoch's time, the speed-up of the epochs after the
first (goal: >= 10x), and how far apart the uncached and the cached runs
are: the encoder outputs over each utterance's valid frames, the heads'
weights after training, and the test log-probabilities.

    python benchmarks/feature_cache.py [--epochs 4] [--speakers 20] [--task words] [--data DIR] [--threads N]

Without ``--data`` a SynthSpeech corpus of the task is synthesized into a
temporary folder (a few seconds).
"""

import argparse
import os
import statistics
import tempfile

import speechbrain as sb
import torch
from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.epoch_loop import EpochCounter
from timed_brain import TimedBrain

from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.data.feature_cache import add_feature_cache, feature_cache_applies
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.synthspeech.synth import SynthOptions, synthesize_task

SUBSETS = {"words": ("words/target", "word"), "intent": ("intent", "intent")}


def build(folder, target, save, epochs, cache=None, memory_mb=0):
    csvs = {split: os.path.join(folder, f"{split}.csv") for split in ("train", "valid", "test")}
    datasets, encoders = classification_datasets(folder, csvs, [target], save)
    torch.manual_seed(0)
    encoder = ConvEncoder(40, channels=(128, 128, 256), strides=(1, 2, 1), rnn_dim=128)
    head = ClassifierHead(MeanMaxPooling(encoder.output_dim), len(encoders[target]), dropout=0.0)
    heads = torch.nn.ModuleDict({target: head})
    hparams = {
        "targets": [target],
        "label_encoders": encoders,
        "compute_features": Fbank(n_mels=40),
        "mean_var_norm": InputNormalization(norm_type="sentence"),
        "encoder": encoder,
        "heads": heads,
        "freeze_encoder": True,
        "epoch_counter": EpochCounter(epochs),
    }
    if cache is not None:
        assert feature_cache_applies(hparams)
        add_feature_cache(datasets, cache, encoder, hparams["compute_features"], hparams["mean_var_norm"], memory_mb)
    brain = TimedBrain(
        modules={"encoder": encoder, "heads": heads},
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
        opt_class=lambda params: torch.optim.Adam(params, lr=1e-3),
    )
    return brain, datasets


@torch.no_grad()
def forward_all(brain, dataset, batch_size):
    brain.modules.eval()
    return [brain.compute_forward(batch, sb.Stage.TEST) for batch in make_dataloader(dataset, batch_size=batch_size)]


def max_differences(plain_outputs, cached_outputs, target):
    features = log_probs = 0.0
    for plain, cached in zip(plain_outputs, cached_outputs):
        for i, length in enumerate(cached["lens"]):
            frames = int(torch.round(length * cached["features"].shape[1]))
            diff = (plain["features"][i, :frames] - cached["features"][i, :frames]).abs().max()
            features = max(features, float(diff))
        log_probs = max(log_probs, float((plain["log_probs"][target] - cached["log_probs"][target]).abs().max()))
    return features, log_probs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--task", choices=sorted(SUBSETS), default="words")
    parser.add_argument("--data", help="a SynthSpeech root (the folder holding words/, intent/); default: synthesize")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    subset, target = SUBSETS[args.task]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = os.path.join(tmp, "synth")
            synthesize_task(args.task, root, SynthOptions(seed=11, num_speakers=args.speakers), jobs=2, progress=False)
        folder = os.path.join(root, subset)
        loader = {"batch_size": args.batch_size, "shuffle": False}
        brains = {}
        for name, cache, memory_mb in (("uncached", None, 0), ("disk", "cache_disk", 0), ("memory", "cache_mem", 1024)):
            cache = cache and os.path.join(tmp, cache)
            brain, data = build(folder, target, os.path.join(tmp, name), args.epochs, cache, memory_mb)
            brain.fit(
                brain.hparams.epoch_counter,
                data["train"],
                data["valid"],
                train_loader_kwargs=loader,
                valid_loader_kwargs=loader,
            )
            brains[name] = brain, data
        (plain, plain_data), (cached, cached_data) = brains["uncached"], brains["memory"]
        train_size = len(plain_data["train"])
        params = sum(p.numel() for p in plain.modules.encoder.parameters())
        print(
            f"{args.task}: {train_size} training utterances, batch {args.batch_size}, "
            f"{torch.get_num_threads()} threads, encoder {params / 1e3:.0f}k parameters (frozen)"
        )
        print(f"{'epoch':>5}{'uncached s':>12}{'cached, disk s':>16}{'cached, memory s':>18}")
        times = [brain.epoch_times for brain, _ in brains.values()]
        for epoch, (a, b, c) in enumerate(zip(*times), start=1):
            print(f"{epoch:>5}{a:>12.3f}{b:>16.3f}{c:>18.3f}{'  (cache filled)' if epoch == 1 else ''}")
        later = [statistics.median(t[1:]) for t in times]
        print(
            f"speed-up of epochs 2-{args.epochs} (median): disk {later[0] / later[1]:.1f}x, "
            f"memory {later[0] / later[2]:.1f}x"
        )
        print(f"first epoch (filling), cached / uncached: {times[1][0] / times[0][0]:.2f}")
        features, log_probs = max_differences(
            forward_all(plain, plain_data["test"], args.batch_size),
            forward_all(cached, cached_data["test"], args.batch_size),
            target,
        )
        pairs = zip(plain.modules.heads.state_dict().values(), cached.modules.heads.state_dict().values())
        heads = max(float((a - b).abs().max()) for a, b in pairs)
        print(
            f"max |difference|: encoder outputs (valid frames) {features:.2e}, "
            f"test log-probs after training {log_probs:.2e}, head weights {heads:.2e}"
        )
        accuracies = [brain.valid_stats["accuracy"] for brain, _ in brains.values()]
        print("valid accuracy after training: " + ", ".join(f"{n} {a:.3f}" for n, a in zip(brains, accuracies)))


if __name__ == "__main__":
    main()
