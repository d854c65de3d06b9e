#!/usr/bin/env python3
"""CTC training steps of the hub-format source candidates, side by side.

The source stage's candidates, each built from its recipe YAML's ``architecture`` (random weights, written
with ``save_pretrained`` and loaded through ``HFEncoder`` as the recipe does):

- ``recipes/SynthSpeech/pretrain/hparams/ctc_whisper.yaml``: a Whisper-architecture encoder on log-mels, with
  the YAML's 20 ms mel hop (40 ms frames: ``whisper``) and with Whisper's own 10 ms (20 ms frames:
  ``whisper_20ms``);
- ``recipes/SynthSpeech/pretrain/hparams/ctc_wav2vec2.yaml``: a wav2vec 2.0-architecture encoder with a light
  convolutional front end on the raw waveform (40 ms frames).

Each takes the same batches of source sentences (forward, CTC loss through a linear head, backward, AdamW);
the two alternate in rounds. Prints the median ms per step of each and their ratio.

    python benchmarks/hf_source_families.py --data results/demo/data/asr/source [--steps 4] [--rounds 3]
"""

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_xfer.data.dataio import read_mono_16k
from speechbrain_xfer.encoders import HFEncoder
from speechbrain_xfer.encoders.hf_folders import write_random_encoder

PRETRAIN = Path(__file__).resolve().parents[1] / "recipes" / "SynthSpeech" / "pretrain" / "hparams"
# name: (model type, YAML, mel hop: None for the YAML's)
CANDIDATES = {
    "whisper": ("whisper", "ctc_whisper.yaml", None),
    "whisper_20ms": ("whisper", "ctc_whisper.yaml", 160),
    "wav2vec2": ("wav2vec2", "ctc_wav2vec2.yaml", None),
}


def model_keys(yaml_name):
    """The model keys of a source YAML (``architecture``, and ``mel_hop_length`` where it has one)."""
    text = (PRETRAIN / yaml_name).read_text()
    start = text.index("\nd_model:")
    return load_hyperpyyaml(text[start : text.index("\ninitial_weights:")])


def source_batches(data, batch, steps):
    with open(os.path.join(data, "train.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[: batch * steps]
    wavs = [read_mono_16k(row["wav"].replace("$data_root", data)) for row in rows]
    batches = []
    for i in range(0, len(wavs), batch):
        chunk = wavs[i : i + batch]
        longest = max(w.shape[0] for w in chunk)
        padded = torch.stack([torch.nn.functional.pad(w, (0, longest - w.shape[0])) for w in chunk])
        batches.append((padded, torch.tensor([w.shape[0] / longest for w in chunk])))
    return batches


def build(name, folder):
    model_type, yaml_name, hop = CANDIDATES[name]
    keys = model_keys(yaml_name)
    hop = hop or keys.get("mel_hop_length")
    extractor = {"hop_length": hop} if hop else None
    source = write_random_encoder(
        os.path.join(folder, name), model_type, config=keys["architecture"], feature_extractor=extractor
    )
    extra = {"whisper_window": "batch"} if model_type == "whisper" else {}
    torch.manual_seed(0)
    encoder = HFEncoder(source, freeze_feature_extractor=False, **extra).train()
    head = torch.nn.Linear(encoder.output_dim, 30)
    params = [*encoder.parameters(), *head.parameters()]
    return encoder, head, torch.optim.AdamW(params, lr=1e-3), sum(p.numel() for p in encoder.parameters())


def step(encoder, head, optimizer, wavs, lens):
    log_probs = head(encoder(wavs, lens)).log_softmax(-1)
    frames = (lens * log_probs.shape[1]).round().long()
    targets = torch.randint(1, 30, (wavs.shape[0], 20), generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, frames, torch.full_like(frames, 20))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the asr/source folder of a SynthSpeech corpus")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    batches = source_batches(args.data, args.batch, args.steps)
    audio = sum(float(lens.sum()) * wavs.shape[1] for wavs, lens in batches) / 16000 / len(batches)
    with tempfile.TemporaryDirectory() as folder:
        models = {name: build(name, folder) for name in CANDIDATES}
        times = {name: [] for name in CANDIDATES}
        for encoder, head, optimizer, _ in models.values():
            step(encoder, head, optimizer, *batches[0])  # warm-up
        for _ in range(args.rounds):
            for family, (encoder, head, optimizer, _) in models.items():
                start = time.perf_counter()
                for wavs, lens in batches:
                    step(encoder, head, optimizer, wavs, lens)
                times[family].append((time.perf_counter() - start) / len(batches))
    print(
        f"CTC steps on {args.batch} source sentences ({audio:.1f} s of audio per batch); "
        f"{torch.get_num_threads()} threads; {args.steps} steps x {args.rounds} rounds, median"
    )
    for family, (_, _, _, count) in models.items():
        print(f"{family:<13} {count / 1e6:6.2f}M parameters  {statistics.median(times[family]) * 1e3:8.1f} ms/step")
    for name in ("whisper_20ms", "wav2vec2"):
        print(f"{name}/whisper step ratio: {statistics.median(times[name]) / statistics.median(times['whisper']):.2f}")


if __name__ == "__main__":
    main()
