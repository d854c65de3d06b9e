#!/usr/bin/env python3
"""Training steps of a wav2vec2-base-sized hub encoder through the keyword recipe's Brain, method by method.

A wav2vec 2.0 model of transformers' default ``Wav2Vec2Config`` (94.4 M
parameters, random weights: the cost does not depend on them) is saved with
``save_pretrained`` and loaded back through ``HFEncoder``, as
``facebook/wav2vec2-base`` is. Each method is an ``UtteranceClassifierBrain``
built as ``recipes/SpeechCommands/KWS/hparams/wav2vec2_*.yaml`` builds it
(layer sum, frozen CNN front end, attention-pooling head, fused AdamW, the
encoder's own optimizer and learning rate):

- ``finetune``: the whole transformer trains;
- ``l2sp``: the same with the L2-SP term (alpha 0.01);
- ``l2sp_decoupled``: the same with the pull in the optimizer's update (``L2SP(decoupled=True)``);
- ``l2sp_fused``: the decoupled pull inside the encoder optimizer's own pass (``AnchoredAdamW``);
- ``l2sp_lazy`` (on request): the decoupled pull of each weight every 4th step (``pull_every=4``);
- ``lora``: LoRA (rank 8) on the attention projections, the rest frozen;
- ``frozen``: a frozen encoder whose outputs come from the feature cache
  (``FrozenEncoderCache``, filled once from WAV files); only the head trains.

and, on request (``--methods``), ``ewc`` (lambda 1, a made-up Fisher: its cost
does not depend on the values), and ``l2sp_autograd`` / ``ewc_autograd``: the
same penalties back-propagated by autograd, as TransferBrain did before it
added their closed-form gradients itself.

The methods' Brains alternate step by step on the same batches, so that
machine noise hits them alike; the figures are medians over every step. Peak memory is
measured for each method alone: on the CPU as the peak RSS of a fresh
process per method, on a GPU as the peak allocated memory of building and
training it, above what the other methods already held.

    python benchmarks/hf_step.py [--steps 5] [--rounds 3] [--batch 8] [--seconds 1.0]
    python benchmarks/hf_step.py --device cuda --precision bf16 --batch 64

Among its last lines: ``l2sp/finetune step ratio: X (step by step: median Y, 95% interval A-B)``, and the
same for each decoupled form.
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import soundfile
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_xfer.brains import UtteranceClassifierBrain
from speechbrain_xfer.data.feature_cache import FrozenEncoderCache
from speechbrain_xfer.encoders import AdaptedEncoder, HFEncoder
from speechbrain_xfer.encoders.adapters import ATTENTION_TARGETS
from speechbrain_xfer.lobes import AttentionPooling, ClassifierHead
from speechbrain_xfer.regularization import EWC, L2SP, AnchoredAdamW

METHODS = ("finetune", "l2sp", "l2sp_decoupled", "l2sp_fused", "lora", "frozen")
EXTRA_METHODS = ("ewc", "l2sp_autograd", "ewc_autograd", "l2sp_lazy")
N_CLASSES = 12  # Speech Commands v2, 12 classes
SAMPLE_RATE = 16000


class AutogradL2SP(L2SP):
    """L2-SP without its closed-form gradient: TransferBrain back-propagates it."""

    penalty = None


class AutogradEWC(EWC):
    """EWC without its closed-form gradient: TransferBrain back-propagates it."""

    penalty = None


def regularizer(method, encoder, heads):
    """The regularizer of ``method`` (None for none)."""
    kind = method.removesuffix("_autograd")
    if method in ("l2sp_decoupled", "l2sp_fused", "l2sp_lazy"):
        return L2SP(encoder, heads, alpha=0.01, beta=0.0, decoupled=True, pull_every=4 if method == "l2sp_lazy" else 1)
    if kind == "l2sp":
        return (AutogradL2SP if method.endswith("_autograd") else L2SP)(encoder, heads, alpha=0.01, beta=0.0)
    if kind == "ewc":
        ewc = (AutogradEWC if method.endswith("_autograd") else EWC)(encoder, lam=1.0)
        for name, buffer in ewc.named_buffers():
            if name.startswith("fisher__"):
                buffer.fill_(1e-3)
        return ewc
    return None


def save_base_model(folder):
    """A wav2vec2-base-shaped model (transformers' defaults, random weights) in hub format."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)


def head_optimizer(params):
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0, fused=True)


def encoder_optimizer(groups):
    return torch.optim.AdamW(groups, weight_decay=0.0, fused=True)


def anchored_encoder_optimizer(groups):
    return AnchoredAdamW(groups, weight_decay=0.0, fused=True)


def build_brain(method, model, device, precision):
    """The keyword recipe's Brain for ``method``, its optimizers initialised."""
    if method == "lora":
        encoder = HFEncoder(model, layer_sum=True)
        encoder = AdaptedEncoder(
            encoder, kind="lora", rank=8, alpha=8, targets=ATTENTION_TARGETS, unfrozen=["*layer_weights"]
        )
    else:
        encoder = HFEncoder(model, freeze=method == "frozen", layer_sum=method != "frozen")
    torch.manual_seed(1)
    head = ClassifierHead(AttentionPooling(encoder.output_dim), n_classes=N_CLASSES, dropout=0.1)
    heads = torch.nn.ModuleDict({"word": head})
    hparams = {"targets": ["word"], "heads": heads, "encoder": encoder}
    if method not in ("lora", "frozen"):
        opt_class = anchored_encoder_optimizer if method == "l2sp_fused" else encoder_optimizer
        hparams.update(encoder_opt_class=opt_class, encoder_lr=3e-5)
    penalty = regularizer(method, encoder, heads)
    if penalty is not None:
        hparams.update(regularizers={method: penalty})
    modules = {"encoder": encoder, "heads": heads}
    run_opts = {"device": device, "precision": precision}
    brain = UtteranceClassifierBrain(modules, head_optimizer, hparams, run_opts)
    brain.on_fit_start()
    brain.modules.train()
    return brain


def audio_batches(steps, batch, seconds):
    """``steps`` batches of ``batch`` random clips of ``seconds`` each, as the recipe's dataloader gives them."""
    generator = torch.Generator().manual_seed(2)
    samples = int(seconds * SAMPLE_RATE)
    batches = []
    for step in range(steps):
        items = []
        for i in range(batch):
            sig = 0.1 * torch.randn(samples, generator=generator)
            label = torch.randint(0, N_CLASSES, (1,), generator=generator)
            items.append({"id": f"utt{step}_{i}", "sig": sig, "word_encoded": label})
        batches.append(items)
    return batches


def cached_batches(brain, batches, folder):
    """The batches with the frozen encoder's outputs from the feature cache, and the fill time per utterance."""
    cache = FrozenEncoderCache(os.path.join(folder, "cache"), brain.modules.encoder)
    cached, started, count = [], time.perf_counter(), 0
    for items in batches:
        rows = []
        for item in items:
            path = os.path.join(folder, f"{item['id']}.wav")
            soundfile.write(path, item["sig"].numpy(), SAMPLE_RATE)
            rows.append({"id": item["id"], "encoded": cache(item["id"], path), "word_encoded": item["word_encoded"]})
            count += 1
        cached.append(rows)
    synchronize()
    return cached, (time.perf_counter() - started) / count


def synchronize():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_steps(brain, batches):
    synchronize()
    start = time.perf_counter()
    for items in batches:
        brain.fit_batch(PaddedBatch(items))
    synchronize()
    return (time.perf_counter() - start) / len(batches)


def prepared(method, args, folder):
    """The Brain of ``method``, its batches (for ``frozen``, from the cache) and the cache's fill time per
    utterance, after warm-up steps; on a GPU, also the peak memory that building and training it took."""
    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        resident = torch.cuda.memory_allocated()  # the other methods' models and optimizer states
    brain = build_brain(method, args.model, args.device, args.precision)
    batches = audio_batches(args.steps, args.batch, args.seconds)
    fill = None
    if method == "frozen":
        batches, fill = cached_batches(brain, batches, folder)
    time_steps(brain, batches[:2])  # warm-up: first-call allocations, kernel choice
    peak = (torch.cuda.max_memory_allocated() - resident) / 2**20 if on_gpu else None
    return brain, batches, fill, peak


def peak_memory(method, args):
    """Peak RSS (MiB) of ``method`` alone on the CPU: this process does nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        brain, batches, _, _ = prepared(method, args, folder)
        time_steps(brain, batches)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_memory_in_fresh_processes(script, names, options):
    """``{name: MiB}``: ``python script --only <name> <options>`` for each name, each in a process of its own,
    printing its peak memory as JSON on its last line (this script's and peers.py's ``--only``)."""
    memory = {}
    for name in names:
        command = [sys.executable, script, "--only", name, *(str(x) for item in options.items() for x in item)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        memory[name] = json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]
    return memory


def memory_in_fresh_processes(args, methods):
    """``{method: MiB}`` on the CPU, each measured by this script in a process of its own."""
    options = {
        "--model": args.model,
        "--steps": 2,
        "--batch": args.batch,
        "--seconds": args.seconds,
        "--device": args.device,
        "--precision": args.precision,
        "--threads": args.threads,
    }
    return peak_memory_in_fresh_processes(__file__, methods, options)


@torch.no_grad()
def update_costs(brain, repeats=10):
    """ms of the encoder's update alone (on random gradients): the optimizer step, then with the decoupled L2-SP
    pull before it, in AnchoredAdamW's pass, every 4th step, then with L2-SP's closed-form value and gradient
    (what each form adds to a step)."""
    encoder, optimizer = brain.modules.encoder, brain.encoder_optimizer
    params = [p for p in encoder.parameters() if p.requires_grad]
    closed, decoupled = L2SP(encoder, alpha=0.01, beta=0.0), L2SP(encoder, alpha=0.01, beta=0.0, decoupled=True)
    lazy = L2SP(encoder, alpha=0.01, beta=0.0, decoupled=True, pull_every=4)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    anchored = AnchoredAdamW([dict(group) for group in optimizer.param_groups])  # its own moments
    takers = dict.fromkeys(rates, anchored)

    def with_closed_form():
        closed.penalty()
        closed.add_gradient_()
        optimizer.step()

    def with_pull():
        decoupled.pull_(rates)
        optimizer.step()

    def with_pull_in_the_pass():
        decoupled.pull_(rates, takers=takers)
        anchored.step()

    def with_lazy_pull():
        lazy.pull_(rates)
        optimizer.step()

    variants = {
        "optimizer step": optimizer.step,
        "+ decoupled pull": with_pull,
        "AnchoredAdamW with the pull": with_pull_in_the_pass,
        "+ pull every 4th step": with_lazy_pull,
        "+ closed form": with_closed_form,
    }
    times = {name: [] for name in variants}
    for param in params:
        param.grad = 1e-3 * torch.randn_like(param)
    for _ in range(repeats):
        for name, variant in variants.items():
            synchronize()
            start = time.perf_counter()
            variant()
            synchronize()
            times[name].append(time.perf_counter() - start)
    for param in params:
        param.grad = None
    return {name: statistics.median(values) for name, values in times.items()}


def paired_ratios(slow, fast):
    """The median and 95 % interval (bootstrap) of the step-by-step ratios ``slow[i] / fast[i]``: each pair of
    steps ran close together in time on the same batch."""
    pairs = [a / b for a, b in zip(slow, fast, strict=True)]
    draws = random.Random(0)
    medians = sorted(statistics.median(draws.choices(pairs, k=len(pairs))) for _ in range(2000))
    return f"step by step: median {statistics.median(pairs):.3f}, 95% interval {medians[50]:.3f}-{medians[1949]:.3f}"


def step_ratio(times, slow, fast):
    """``slow``/``fast`` as the ratio of the median steps, then :func:`paired_ratios`."""
    median_ratio = statistics.median(times[slow]) / statistics.median(times[fast])
    return f"{median_ratio:.3f} ({paired_ratios(times[slow], times[fast])})"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per method and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--model", help="a saved model folder (default: a new wav2vec2-base-shaped one)")
    # One method's peak memory, printed as JSON (what memory_in_fresh_processes runs).
    parser.add_argument("--only", choices=METHODS + EXTRA_METHODS, help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    sb.utils.logger.get_logger("speechbrain").setLevel("WARNING")
    if args.only:
        print(json.dumps({"peak_mib": peak_memory(args.only, args)}))
        return
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as folder:
        if args.model is None:
            args.model = os.path.join(folder, "wav2vec2-base-shaped")
            save_base_model(args.model)
        on_gpu = args.device.startswith("cuda")
        memory = {} if on_gpu else memory_in_fresh_processes(args, methods)
        runs = {method: prepared(method, args, folder) for method in methods}
        if on_gpu:  # CUDA memory adds up: each method's peak was measured on top of the others' resident state
            memory = {method: run[3] for method, run in runs.items()}
        updates = update_costs(runs["finetune"][0]) if "finetune" in runs else None
        times = {method: [] for method in methods}
        order = list(runs)
        for _ in range(args.rounds):
            for step in range(args.steps):  # step by step, method after method: the machine's drift hits all alike
                for method in order:
                    brain, batches, _, _ = runs[method]
                    times[method].append(time_steps(brain, batches[step : step + 1]))
                order = order[1:] + order[:1]  # and each method in each place of the order in turn

    encoder = runs[methods[0]][0].modules.encoder
    total = sum(p.numel() for p in encoder.parameters())
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {args.threads} threads"
    print(
        f"wav2vec2-base-shaped encoder, {total / 1e6:.1f} M parameters; {device}, {args.precision}; "
        f"batch {args.batch} x {args.seconds:g} s; {args.steps} steps x {args.rounds} rounds, median step"
    )
    memory_kind = "peak allocated" if args.device.startswith("cuda") else "peak RSS"
    print(f"{'method':<14} {'trainable':>10} {'ms/step':>9} {'audio-s/s':>10} {memory_kind + ' MiB':>20}")
    medians = {}
    for method, (brain, _, fill, _) in runs.items():
        medians[method] = statistics.median(times[method])
        trainable = sum(p.numel() for p in brain.modules.parameters() if p.requires_grad)
        audio_rate = args.batch * args.seconds / medians[method]
        figures = f"{trainable / 1e6:>9.2f}M {medians[method] * 1e3:>9.1f} {audio_rate:>10.1f} {memory[method]:>20.0f}"
        print(f"{method:<14} {figures}")
        if fill is not None:
            print(f"{'':<14} (feature-cache fill: {fill * 1e3:.1f} ms per utterance, once)")
    for slow, fast in (("l2sp_autograd", "l2sp"), ("ewc_autograd", "ewc")):
        if slow in medians and fast in medians:
            print(f"{slow}/{fast} step ratio: {medians[slow] / medians[fast]:.3f}")
    if "ewc" in medians and "finetune" in medians:
        print(f"ewc/finetune step ratio: {medians['ewc'] / medians['finetune']:.3f}")
    if "finetune" in medians and "l2sp" in medians:
        print(f"l2sp/finetune step ratio: {step_ratio(times, 'l2sp', 'finetune')}")
    if updates is not None:
        costs = ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in updates.items())
        print(f"the encoder's update alone (median of 10): {costs}")
    for variant in ("l2sp_decoupled", "l2sp_fused", "l2sp_lazy"):
        if "finetune" in medians and variant in medians:
            print(f"{variant}/finetune step ratio: {step_ratio(times, variant, 'finetune')}")


if __name__ == "__main__":
    main()
