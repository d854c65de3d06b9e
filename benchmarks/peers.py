#!/usr/bin/env python3
"""The same fine-tuning step of a wav2vec2-base-shaped model in this project and in the two loops a user
would otherwise pick: a plain SpeechBrain recipe and Hugging Face's ``Trainer``.

One model (transformers' default ``Wav2Vec2Config``: 94.4 M parameters, random weights, saved with
``save_pretrained``; the CNN front end frozen everywhere, as the recipes of all three do) and the same
batches (8 clips of 1 s and 8 of 4 s, fixed seed, 12 classes) go through:

- ``ours``: this project's ``UtteranceClassifierBrain`` on ``HFEncoder`` (the last hidden state), the
  attention-pooling head, fused AdamW for the encoder and for the head (the hub-encoder recipes'
  optimizers); ``ours+l2sp`` adds the L2-SP term (alpha 0.01) as the recipes' ``l2sp`` YAMLs do, and
  ``ours+l2sp_fused`` the same pull in the encoder optimizer's own pass (``L2SP(decoupled=True)`` with
  ``AnchoredAdamW``);
- ``speechbrain``: a plain ``sb.Brain`` built as SpeechBrain's wav2vec2 recipes build it
  (recipes/IEMOCAP/emotion_recognition/train_with_wav2vec2.py): SpeechBrain's own wrapper
  (``speechbrain.integrations.huggingface.Wav2Vec2``), the same head, one AdamW per module group,
  SpeechBrain's ``fit_batch``;
- ``hf_trainer``: ``transformers.Trainer`` with ``Wav2Vec2ForSequenceClassification`` and a default
  ``TrainingArguments`` for the device (its defaults: fused AdamW, linear schedule, clipping at 1.0), no
  evaluation, no saving; a step is timed from ``on_step_begin`` to ``on_step_end``.

The contestants alternate in rounds, each round a few steps of each on each batch shape, each contestant in
each place of the order in turn; the figures are medians over every timed step. Each step starts from the same
random seed in every contestant, so all of them skip the same transformer layers (the config's layer drop of
0.1 skips about one layer in ten at random, a step-time spread of several per cent) and mask the same frames:
the steps of one seed do the same work, and their step-by-step ratios are printed with 95 % intervals. Peak
memory is measured for each contestant alone, in a fresh process (the peak RSS on the CPU; on a GPU, the peak
allocated memory).

    python benchmarks/peers.py [--steps 3] [--rounds 3]
    python benchmarks/peers.py --device cuda --precision bf16 --batch 32

The last lines read ``ours/speechbrain step ratio: X (step by step: ...)`` and ``ours/hf_trainer step ratio: Y
(...)``: ours against each peer, the sum over both batch shapes of the median step times, then the median and
95 % interval of the ratios of the steps that ran on one batch and seed.
"""

import argparse
import itertools
import json
import os
import resource
import statistics
import tempfile
import time

import numpy
import speechbrain as sb
import torch
from hf_step import (
    N_CLASSES,
    SAMPLE_RATE,
    anchored_encoder_optimizer,
    encoder_optimizer,
    head_optimizer,
    paired_ratios,
    peak_memory_in_fresh_processes,
    save_base_model,
    synchronize,
)
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.encoders import HFEncoder
from speechbrain_xfer.lobes import AttentionPooling, ClassifierHead
from speechbrain_xfer.regularization import L2SP

CONTESTANTS = ("ours", "ours+l2sp", "ours+l2sp_fused", "speechbrain", "hf_trainer")
SHAPES = (1.0, 4.0)  # clip seconds
ENCODER_LR, HEAD_LR = 3e-5, 1e-3


def batches(steps, batch, seconds, seed=2):
    """``steps`` lists of ``batch`` items ``{"id", "sig", "word_encoded"}``: random clips, random labels."""
    generator = torch.Generator().manual_seed(seed)
    samples = int(seconds * SAMPLE_RATE)
    return [
        [
            {
                "id": f"utt{step}_{i}",
                "sig": 0.1 * torch.randn(samples, generator=generator),
                "word_encoded": torch.randint(0, N_CLASSES, (1,), generator=generator),
            }
            for i in range(batch)
        ]
        for step in range(steps)
    ]


def reseed(seed):
    """Seeds what a training step draws: dropout and layer drop (torch), the time masks (numpy, in
    transformers)."""
    torch.manual_seed(seed)
    numpy.random.seed(seed)


def head(input_dim):
    torch.manual_seed(1)
    return ClassifierHead(AttentionPooling(input_dim), n_classes=N_CLASSES, dropout=0.1)


class SpeechBrainRecipeBrain(sb.Brain):
    """A wav2vec2 classification Brain as SpeechBrain's own recipes write it."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        return self.modules.head(self.modules.wav2vec2(wavs, lens), lens)

    def compute_objectives(self, log_probs, batch, stage):
        return torch.nn.functional.nll_loss(log_probs, batch.word_encoded.data.view(-1))

    def init_optimizers(self):
        self.wav2vec2_optimizer = self.hparams.wav2vec2_opt_class(self.modules.wav2vec2.parameters())
        self.optimizer = self.hparams.opt_class(self.modules.head.parameters())
        self.optimizers_dict = {"wav2vec2_optimizer": self.wav2vec2_optimizer, "model_optimizer": self.optimizer}


class BrainSteps:
    """A Brain's training steps, one ``fit_batch`` each, the i-th from ``seeds[i]``."""

    def __init__(self, brain):
        self.brain = brain

    def steps(self, items_list, seeds):
        times = []
        for items, seed in zip(items_list, seeds, strict=True):
            reseed(seed)
            synchronize()
            start = time.perf_counter()
            self.brain.fit_batch(PaddedBatch(items))
            synchronize()
            times.append(time.perf_counter() - start)
        return times


def ours(model, device, precision, l2sp=None):
    encoder = HFEncoder(model)
    heads = torch.nn.ModuleDict({"word": head(encoder.output_dim)})
    hparams = {
        "targets": ["word"],
        "heads": heads,
        "encoder": encoder,
        "encoder_opt_class": anchored_encoder_optimizer if l2sp == "fused" else encoder_optimizer,
        "encoder_lr": ENCODER_LR,
    }
    if l2sp:
        hparams["regularizers"] = {"l2sp": L2SP(encoder, heads, alpha=0.01, beta=0.0, decoupled=l2sp == "fused")}
    brain = UtteranceClassifierBrain(
        {"encoder": encoder, "heads": heads},
        head_optimizer,
        hparams,
        {"device": device, "precision": precision},
    )
    brain.on_fit_start()
    brain.modules.train()
    return BrainSteps(brain)


def speechbrain_recipe(model, device, precision, folder):
    from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2

    wav2vec2 = Wav2Vec2(model, os.path.join(folder, "sb_save"), freeze=False, freeze_feature_extractor=True)
    hparams = {
        "wav2vec2_opt_class": lambda params: torch.optim.AdamW(params, lr=ENCODER_LR, weight_decay=0.0),
        "opt_class": lambda params: torch.optim.AdamW(params, lr=HEAD_LR, weight_decay=0.0),
    }
    modules = {"wav2vec2": wav2vec2, "head": head(wav2vec2.model.config.hidden_size)}
    brain = SpeechBrainRecipeBrain(modules, hparams=hparams, run_opts={"device": device, "precision": precision})
    brain.on_fit_start()
    brain.modules.train()
    return BrainSteps(brain)


class TrainerSteps:
    """``transformers.Trainer`` on ``Wav2Vec2ForSequenceClassification``, timed by a callback from the start to the
    end of each optimizer step (the callback seeds each step first). Each call trains a new ``Trainer`` for the
    steps asked (``TrainingArguments`` fix ``max_steps``) on the same model and optimizer: the steps of one long
    training."""

    def __init__(self, model, device, precision, folder, batch):
        from transformers import TrainerCallback, Wav2Vec2ForSequenceClassification

        self.model = Wav2Vec2ForSequenceClassification.from_pretrained(model, num_labels=N_CLASSES)
        self.model.freeze_feature_encoder()
        self.optimizer = None  # the first Trainer's (its default for the device), then kept
        times = self.times = []
        seeds = self.seeds = []

        class StepTimer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                reseed(seeds.pop(0))
                synchronize()
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                synchronize()
                times.append(time.perf_counter() - self.start)

        self.timer = StepTimer()
        self.arguments = dict(
            output_dir=os.path.join(folder, "hf_trainer"),
            per_device_train_batch_size=batch,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=device == "cpu",
            bf16=precision == "bf16",
            fp16=precision == "fp16",
        )

    def steps(self, items_list, seeds):
        from transformers import Trainer, TrainingArguments

        dataset = [{"input_values": item["sig"], "labels": int(item["word_encoded"])} for b in items_list for item in b]
        trainer = Trainer(
            model=self.model,
            args=TrainingArguments(max_steps=len(items_list), **self.arguments),
            train_dataset=dataset,
            optimizers=(self.optimizer, None),
            callbacks=[self.timer],
        )
        del self.times[:]
        self.seeds[:] = seeds
        trainer.train()
        self.optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # unwrapped from accelerate
        return list(self.times)


def build(name, args, folder):
    if name == "hf_trainer":
        return TrainerSteps(args.model, args.device, args.precision, folder, args.batch)
    if name == "speechbrain":
        return speechbrain_recipe(args.model, args.device, args.precision, folder)
    l2sp = {"ours+l2sp": "loss", "ours+l2sp_fused": "fused"}.get(name)
    return ours(args.model, args.device, args.precision, l2sp=l2sp)


def peak_memory(name, args):
    """Peak memory (MiB) of ``name`` alone: built, then trained on each shape (a step each: the first step
    allocates the optimizer's state, so none after it needs more)."""
    with tempfile.TemporaryDirectory() as folder:
        on_gpu = args.device.startswith("cuda")
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        contestant = build(name, args, folder)
        for seconds in SHAPES:
            contestant.steps(batches(1, args.batch, seconds), seeds=(0,))
        if on_gpu:
            return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_in_fresh_processes(args):
    """``{contestant: MiB}``, each measured by this script in a process of its own."""
    options = {"--model": args.model, "--batch": args.batch, "--device": args.device}
    options.update({"--precision": args.precision, "--threads": args.threads})
    return peak_memory_in_fresh_processes(__file__, CONTESTANTS, options)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per contestant, shape and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--model", help="a saved model folder (default: a new wav2vec2-base-shaped one)")
    parser.add_argument("--only", choices=CONTESTANTS, help=argparse.SUPPRESS)  # one peak memory, as JSON
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    sb.utils.logger.get_logger("speechbrain").setLevel("WARNING")
    if args.only:
        print(json.dumps({"peak_mib": peak_memory(args.only, args)}))
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if args.model is None:
            args.model = os.path.join(folder, "wav2vec2-base-shaped")
            save_base_model(args.model)
        memory = memory_in_fresh_processes(args)
        contestants = {name: build(name, args, folder) for name in CONTESTANTS}
        shapes = {seconds: batches(args.steps, args.batch, seconds) for seconds in SHAPES}
        for contestant in contestants.values():  # warm-up: first-call allocations, kernel choice
            for items in shapes.values():
                contestant.steps(items[:1], seeds=(0,))
        times = {(name, seconds): [] for name in CONTESTANTS for seconds in SHAPES}
        order = list(CONTESTANTS)
        seeds = itertools.count(1)
        for _ in range(args.rounds):
            for seconds, items in shapes.items():
                step_seeds = [next(seeds) for _ in items]
                for name in order:
                    times[(name, seconds)] += contestants[name].steps(items, step_seeds)
                order = order[1:] + order[:1]

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {args.threads} threads"
    print(
        f"wav2vec2-base-shaped model (94.4 M parameters, CNN front end frozen); {device}, {args.precision}; "
        f"{args.steps} steps x {args.rounds} rounds per shape, median; {time.perf_counter() - started:.0f} s in all"
    )
    memory_kind = "peak allocated MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    print(
        f"{'':<20} "
        + " ".join(f"{f'{args.batch} x {s:g} s: ms/step  audio-s/s':>34}" for s in SHAPES)
        + f"  {memory_kind}"
    )
    medians = {key: statistics.median(value) for key, value in times.items()}
    for name in CONTESTANTS:
        cells = " ".join(
            f"{medians[(name, s)] * 1e3:>25.1f} {args.batch * s / medians[(name, s)]:>8.1f}" for s in SHAPES
        )
        print(f"{name:<20} {cells}  {memory[name]:>10.0f}")
    total = {name: sum(medians[(name, s)] for s in SHAPES) for name in CONTESTANTS}
    steps = {name: [t for s in SHAPES for t in times[(name, s)]] for name in CONTESTANTS}
    for slow, fast in (
        ("ours+l2sp", "ours"),
        ("ours+l2sp_fused", "ours"),
        ("ours", "speechbrain"),
        ("ours", "hf_trainer"),
    ):
        ratio = total[slow] / total[fast]
        print(f"{slow}/{fast} step ratio: {ratio:.3f} ({paired_ratios(steps[slow], steps[fast])})")


if __name__ == "__main__":
    main()
