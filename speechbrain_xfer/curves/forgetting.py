"""Forgetting: a fine-tuned encoder put back under the source task's CTC head, scored on the source test set.

The pretraining recipe exports the source model (encoder, CTC head,
tokenizer) as a folder SpeechBrain's ``EncoderASR`` loads. For each
fine-tuned run, its best checkpoint's encoder replaces the export's encoder
and the source test set is transcribed again: how far the character error
rate moves from the pretrained one is how much of the source task the
fine-tuning forgot. A regularizer that pulls towards the pretrained weights
(L2-SP, EWC) should keep it near the pretrained CER.
"""

import csv
import logging
import os
import tempfile

import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.metric_stats import ErrorRateStats
from tqdm import tqdm

logger = logging.getLogger(__name__)

FORGETTING_TASK, FORGETTING_SHOTS = "intent", 10
FORGETTING_METHODS = ("finetune", "l2sp", "ewc", "delta", "bss")
"""Methods whose checkpoints hold the whole encoder (adapters and frozen encoders do not change it)."""
CSV_COLUMNS = ("task", "method", "shots", "seed", "source_CER", "source_WER", "pretrained_CER", "test_accuracy")


def best_encoder_state(run_folder, key="accuracy"):
    """The encoder ``state_dict`` of a run's best checkpoint (by validation ``key``), or None if it has none."""
    checkpoint = Checkpointer(os.path.join(run_folder, "save")).find_checkpoint(max_key=key)
    if checkpoint is None or not os.path.isfile(os.path.join(checkpoint.path, "encoder.ckpt")):
        return None
    return torch.load(os.path.join(checkpoint.path, "encoder.ckpt"), map_location="cpu", weights_only=True)


def source_error_rates(source_export, encoder_states, test_csv, data_folder, progress=True):
    """CER and WER (in %) on the source test set, for each encoder state under the source CTC head.

    Arguments
    ---------
    source_export : str
        The pretraining recipe's export (an ``EncoderASR`` folder).
    encoder_states : dict
        ``{name: encoder state_dict}``; None stands for the pretrained encoder itself.
    test_csv : str
        The source task's test manifest (``wav``, ``transcript``).
    data_folder : str
        Replaces ``$data_root`` in the manifest.

    Returns
    -------
    dict
        ``{name: {"CER": float, "WER": float}}``.
    """
    from speechbrain_xfer.data.dataio import read_mono_16k
    from speechbrain_xfer.data.manifest import read_manifest
    from speechbrain_xfer.hub.loading import load_export

    rows = read_manifest(test_csv, ("wav", "transcript"), data_root=data_folder).rows
    # Read as the recipes' datasets read audio (16 kHz, down-mixed).
    wavs = [read_mono_16k(row["wav"]) for row in rows]
    results = {}
    with tempfile.TemporaryDirectory() as savedir:
        asr = load_export(source_export, savedir=savedir)
        encoder = asr.mods.encoder.encoder
        pretrained = {k: v.clone() for k, v in encoder.state_dict().items()}
        for name, state in encoder_states.items():
            encoder.load_state_dict(pretrained if state is None else state)
            encoder.eval()
            cer, wer = ErrorRateStats(split_tokens=True), ErrorRateStats()
            for row, wav in tqdm(list(zip(rows, wavs)), desc=f"source test set, {name}", disable=not progress):
                # One utterance at a time: no padding, so decoding sees exactly the utterance's frames.
                words, _ = asr.transcribe_batch(wav.unsqueeze(0), torch.ones(1))
                for stats in (cer, wer):
                    stats.append([row["ID"]], [words[0].split()], [row["transcript"].split()])
            results[name] = {"CER": cer.summarize("error_rate"), "WER": wer.summarize("error_rate")}
    return results


def forgetting_rows(runs, summaries, source_export, corpus, progress=True):
    """One row per fine-tuned intent run at 10 shots: its source CER next to the pretrained encoder's."""
    chosen = [
        run
        for run in runs
        if run.task == FORGETTING_TASK
        and run.shots == FORGETTING_SHOTS
        and run.method in FORGETTING_METHODS
        and run in summaries
    ]
    if not chosen:
        return []
    states = {"pretrained": None}
    for run in chosen:
        state = best_encoder_state(run.folder)
        if state is not None:
            states[f"{run.method} seed {run.seed}"] = state
    source = os.path.join(corpus, "asr", "source")
    rates = source_error_rates(source_export, states, os.path.join(source, "test.csv"), source, progress)
    rows = []
    for run in chosen:
        rate = rates.get(f"{run.method} seed {run.seed}")
        if rate is None:
            continue
        rows.append(
            {
                "task": run.task,
                "method": run.method,
                "shots": run.shots,
                "seed": run.seed,
                "source_CER": round(rate["CER"], 2),
                "source_WER": round(rate["WER"], 2),
                "pretrained_CER": round(rates["pretrained"]["CER"], 2),
                "test_accuracy": round(summaries[run]["test"]["accuracy"], 4),
            }
        )
    return rows


def write_forgetting(rows, out):
    """``forgetting.csv`` and ``forgetting.md`` in ``out``; returns the Markdown."""
    with open(os.path.join(out, "forgetting.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"#### forgetting: source test CER (%) after fine-tuning on {FORGETTING_TASK}, {FORGETTING_SHOTS} shots",
        "",
        "| method | seed | source CER | pretrained CER | intent test accuracy (%) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['seed']} | {row['source_CER']:.1f} | {row['pretrained_CER']:.1f} | "
            f"{100 * row['test_accuracy']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "forgetting.md"), "w") as f:
        f.write(text)
    return text


def report_forgetting(runs, summaries, source_export, corpus, out):
    """Writes the forgetting table when the grid has fine-tuned intent runs at 10 shots; returns its rows.

    Needs the source export's CTC head (``ctc_head.ckpt``, written by the
    pretraining recipe) and the source test set (``<corpus>/asr/source``).
    """
    needed = [os.path.join(source_export, "ctc_head.ckpt"), os.path.join(corpus, "asr", "source", "test.csv")]
    missing = [path for path in needed if not os.path.isfile(path)]
    if missing:
        logger.info("no forgetting table: %s not found", ", ".join(missing))
        return []
    rows = forgetting_rows(runs, summaries, source_export, corpus, progress=False)
    if rows:
        write_forgetting(rows, out)
        logger.info(
            "forgetting: source CER of %d fine-tuned encoders in %s", len(rows), os.path.join(out, "forgetting.md")
        )
    return rows
