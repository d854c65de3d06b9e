#!/usr/bin/env python3
"""Step time of TransferBrain with L2-SP against a plain sb.Brain.

Same model, same batches, same optimizer; the Brains alternate in rounds
so that machine noise hits them alike. Prints the median step times and
the ratios (goal: <= 1.02), for L2-SP in the loss and in the optimizer's
update (``L2SP(decoupled=True)``), with Adam; and for the decoupled pull inside
``AnchoredAdamW``'s pass against a plain sb.Brain with PyTorch's fused AdamW
(one kernel per step each: the comparison of like with like).

    python benchmarks/l2sp_step_time.py [--steps 30] [--rounds 5]
"""

import argparse
import copy
import statistics
import time

import speechbrain as sb
import torch

from speechbrain_xfer.brains.transfer import TransferBrain
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.lobes import ClassifierHead, MeanMaxPooling
from speechbrain_xfer.regularization import L2SP, AnchoredAdamW


class PlainBrain(sb.Brain):
    def compute_forward(self, batch, stage):
        feats, labels = batch
        return self.modules.head(self.modules.encoder(feats))

    def compute_objectives(self, log_probs, batch, stage):
        return torch.nn.functional.nll_loss(log_probs, batch[1])


class RegularizedBrain(TransferBrain):
    def compute_forward(self, batch, stage):
        feats, _ = batch
        features = self.modules.encoder(feats)
        return {"features": features, "log_probs": self.modules.head(features)}

    def compute_task_loss(self, outputs, batch, stage):
        return torch.nn.functional.nll_loss(outputs["log_probs"], batch[1])


def time_steps(brain, batches):
    start = time.perf_counter()
    for batch in batches:
        brain.fit_batch(batch)
    return (time.perf_counter() - start) / len(batches)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder = ConvEncoder(40, channels=(128, 128, 128), strides=(1, 2, 1), rnn_dim=128)
    head = ClassifierHead(MeanMaxPooling(256), n_classes=10)
    batches = [(torch.randn(16, 100, 40), torch.randint(0, 10, (16,))) for _ in range(args.steps)]
    brains = {}

    def adam(params):
        return torch.optim.Adam(params, lr=1e-3)

    def fused_adamw(params):
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0, fused=True)

    def anchored_adamw(params):
        return AnchoredAdamW(params, lr=1e-3, weight_decay=0.0)

    # TransferBrain skips non-finite gradients by default, which costs a
    # check per parameter; the second Brain pays the same to isolate L2-SP.
    for name, cls, skip, form, opt_class in (
        ("plain sb.Brain", PlainBrain, False, None, adam),
        ("plain + nonfinite skip", PlainBrain, True, None, adam),
        ("TransferBrain + L2SP", RegularizedBrain, True, {}, adam),
        ("TransferBrain + L2SP decoupled", RegularizedBrain, True, {"decoupled": True}, adam),
        ("TransferBrain + L2SP every 4th", RegularizedBrain, True, {"decoupled": True, "pull_every": 4}, adam),
        ("plain sb.Brain, fused AdamW", PlainBrain, False, None, fused_adamw),
        ("TransferBrain + L2SP in AnchoredAdamW", RegularizedBrain, True, {"decoupled": True}, anchored_adamw),
    ):
        enc, hd = copy.deepcopy(encoder), copy.deepcopy(head)
        hparams = {}
        if form is not None:
            hparams = {"regularizers": {"l2sp": L2SP(enc, hd, alpha=0.01, beta=0.01, **form)}}
        brain = cls(
            modules={"encoder": enc, "head": hd},
            opt_class=opt_class,
            hparams=hparams,
            run_opts={"device": "cpu", "skip_nonfinite_grads": skip},
        )
        brain.on_fit_start()
        brain.modules.train()
        time_steps(brain, batches[:3])  # warm-up
        brains[name] = brain
    times = {name: [] for name in brains}
    for _ in range(args.rounds):
        for name, brain in brains.items():
            times[name].append(time_steps(brain, batches))
    params = sum(p.numel() for p in encoder.parameters()) + sum(p.numel() for p in head.parameters())
    print(f"model: {params / 1e3:.0f}k parameters, batch 16 x 100 frames, {args.steps} steps x {args.rounds} rounds")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:<38} {median * 1e3:8.2f} ms/step")
    plain, plain_skip, l2sp, decoupled, lazy, plain_fused, anchored = medians.values()
    print(f"ratio TransferBrain+L2SP / plain sb.Brain:       {l2sp / plain:.3f}")
    print(f"ratio TransferBrain+L2SP / plain + nonfinite skip: {l2sp / plain_skip:.3f}")
    print(f"ratio TransferBrain+L2SP decoupled / plain sb.Brain: {decoupled / plain:.3f}")
    print(f"ratio TransferBrain+L2SP every 4th / plain sb.Brain: {lazy / plain:.3f}")
    print(f"ratio TransferBrain+L2SP in AnchoredAdamW / plain sb.Brain, fused AdamW: {anchored / plain_fused:.3f}")


if __name__ == "__main__":
    main()
