#!/usr/bin/env python3
"""Training steps of a Whisper encoder on short clips: the 30 s window against the batch's own length.

A whisper-tiny-shaped model (d_model 384, 4 encoder layers, 6 heads, random
weights: the cost does not depend on them) is saved with ``save_pretrained``
and loaded through ``HFEncoder`` twice, with ``whisper_window="30s"`` and
``"batch"``. Each goes through the keyword recipe's Brain
(``UtteranceClassifierBrain``: layer sum, attention-pooling head, AdamW) on
the same batches; the two alternate in rounds. Prints the median ms per
step of each and their ratio, and how far the outputs of the two windows
are apart (the input of the first transformer layer is the same; attention
then no longer sees the window's padding).

    python benchmarks/whisper_window.py [--steps 4] [--rounds 3] [--batch 8] [--seconds 1.0]
"""

import argparse
import os
import statistics
import tempfile

import speechbrain as sb
import torch
from hf_step import N_CLASSES, audio_batches, head_optimizer, time_steps
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.encoders import HFEncoder
from speechbrain_xfer.lobes import AttentionPooling, ClassifierHead

WHISPER_TINY = dict(
    d_model=384,
    encoder_layers=4,
    encoder_attention_heads=6,
    encoder_ffn_dim=1536,
    decoder_layers=4,
    decoder_attention_heads=6,
    decoder_ffn_dim=1536,
    num_mel_bins=80,
)


def save_tiny_model(folder):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    WhisperModel(WhisperConfig(**WHISPER_TINY)).save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)


def build_brain(model, window, device, precision):
    encoder = HFEncoder(model, layer_sum=True, whisper_window=window)
    torch.manual_seed(1)
    heads = torch.nn.ModuleDict({"word": ClassifierHead(AttentionPooling(encoder.output_dim), n_classes=N_CLASSES)})
    hparams = {"targets": ["word"], "heads": heads, "encoder": encoder}
    run_opts = {"device": device, "precision": precision}
    brain = UtteranceClassifierBrain({"encoder": encoder, "heads": heads}, head_optimizer, hparams, run_opts)
    brain.on_fit_start()
    brain.modules.train()
    return brain


def output_gap(model, batch, device):
    """Relative distance and cosine similarity of the final outputs of the two windows (eval mode)."""
    wavs = PaddedBatch(batch).sig[0].to(device)
    outs = {}
    for window in ("30s", "batch"):
        encoder = HFEncoder(model, whisper_window=window).to(device).eval()
        with torch.no_grad():
            outs[window] = encoder(wavs).float()
    full, short = outs["30s"], outs["batch"]
    relative = float((short - full).norm() / full.norm())
    cosine = float(torch.nn.functional.cosine_similarity(short, full, dim=-1).mean())
    return relative, cosine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sb.utils.logger.get_logger("speechbrain").setLevel("WARNING")
    batches = audio_batches(args.steps, args.batch, args.seconds)
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "whisper-tiny-shaped")
        save_tiny_model(model)
        brains = {window: build_brain(model, window, args.device, args.precision) for window in ("30s", "batch")}
        for brain in brains.values():
            time_steps(brain, batches[:1])  # warm-up
        times = {window: [] for window in brains}
        for _ in range(args.rounds):
            for window, brain in brains.items():
                times[window].append(time_steps(brain, batches))
        relative, cosine = output_gap(model, batches[0], args.device)
    params = sum(p.numel() for p in brains["30s"].modules.encoder.parameters())
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {args.threads} threads"
    print(
        f"whisper-tiny-shaped encoder, {params / 1e6:.1f} M parameters; {device}, {args.precision}; "
        f"batch {args.batch} x {args.seconds:g} s; {args.steps} steps x {args.rounds} rounds, median"
    )
    medians = {window: statistics.median(t) for window, t in times.items()}
    for window, median in medians.items():
        rate = args.batch * args.seconds / median
        print(f"whisper_window={window:<6} {median * 1e3:9.1f} ms/step {rate:9.1f} audio-s/s")
    gap = f"relative distance {relative:.3f}, mean cosine {cosine:.3f}"
    print(f"final outputs, batch vs 30 s window: {gap} (random weights)")
    print(f"30s/batch step ratio: {medians['30s'] / medians['batch']:.1f}")


if __name__ == "__main__":
    main()
