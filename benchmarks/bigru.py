#!/usr/bin/env python3
"""PyTorch's GRU on packed sequences against ``bidirectional_gru``, side by side, in the SynthSpeech encoder.

Times, on the same random batches and alternating the two, (1) the
bidirectional GRU alone and (2) the whole ``ConvEncoder`` of the SynthSpeech
recipes (channels 128, 192, 192, strides 2, 2, 1, GRU 160), each in a
training step (forward and backward) and in a forward without gradient.
Utterances have random lengths between half and all of ``--seconds``.
Prints medians, the ratios, and the largest differences in outputs and
gradients.

    python benchmarks/bigru.py [--batch 8] [--seconds 2.5] [--repeats 15] [--threads 1]
"""

import argparse
import math
import statistics
import time

import torch

from speechbrain_xfer.encoders import ConvEncoder, conv
from speechbrain_xfer.encoders.bigru import bidirectional_gru, packed_gru


def timed(train, fn, *args):
    start = time.perf_counter()
    if train:
        out = fn(*args)
        out.backward(torch.ones_like(out))
    else:
        with torch.no_grad():
            out = fn(*args)
    return time.perf_counter() - start, out.detach()


def run_encoder(encoder, feats, lengths, implementation):
    conv.bidirectional_gru = implementation
    try:
        return encoder(feats, lengths)
    finally:
        conv.bidirectional_gru = bidirectional_gru


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    strides = (2, 2, 1)
    encoder = ConvEncoder(40, channels=(128, 192, 192), strides=strides, rnn_dim=160).eval()
    implementations = {"packed nn.GRU": packed_gru, "bidirectional_gru": bidirectional_gru}
    frames_in = int(args.seconds * 100)  # filterbank frames, 10 ms apart
    frames_gru = frames_in // math.prod(strides)  # the GRU's frames, one per 40 ms
    times = {
        (part, mode, name): []
        for part in ("GRU", "encoder")
        for mode in ("train", "no grad")
        for name in implementations
    }
    worst = {"output": 0.0, "gradient": 0.0}
    for _ in range(args.repeats + 2):  # the first two warm up
        lengths = torch.rand(args.batch) * 0.5 + 0.5
        lengths[0] = 1.0
        feats = torch.randn(args.batch, frames_in, 40)
        x = torch.randn(args.batch, frames_gru, 192, requires_grad=True)
        frames = (lengths * frames_gru).long()
        for mode in ("train", "no grad"):
            results = {}
            for name, implementation in implementations.items():
                x.grad = None
                elapsed, out = timed(mode == "train", implementation, encoder.rnn, x, frames)
                times["GRU", mode, name].append(elapsed)
                results[name] = (out, None if x.grad is None else x.grad.clone())
                elapsed, _ = timed(mode == "train", run_encoder, encoder, feats, lengths, implementation)
                times["encoder", mode, name].append(elapsed)
            (out_a, grad_a), (out_b, grad_b) = results.values()
            worst["output"] = max(worst["output"], float((out_a - out_b).abs().max()))
            if grad_a is not None:
                worst["gradient"] = max(worst["gradient"], float((grad_a - grad_b).abs().max()))
    print(
        f"batch of {args.batch} utterances of {args.seconds / 2:.2f}-{args.seconds} s, {args.threads} thread(s), "
        f"median of {args.repeats} (ms):"
    )
    print(f"  {'':18s} {'packed nn.GRU':>14s} {'bidirectional_gru':>18s} {'speed-up':>9s}")
    for part in ("GRU", "encoder"):
        for mode in ("train", "no grad"):
            a, b = (statistics.median(times[part, mode, name][2:]) * 1000 for name in implementations)
            print(f"  {part + ', ' + mode:18s} {a:14.1f} {b:18.1f} {a / b:8.2f}x")
    print(f"  largest difference: outputs {worst['output']:.1e}, input gradients {worst['gradient']:.1e}")


if __name__ == "__main__":
    main()
