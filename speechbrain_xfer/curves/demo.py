"""The offline demo: SynthSpeech corpus -> source pretraining -> learning curves.

Every stage skips work already done, so an interrupted demo resumes where it
stopped when the same command runs again.
"""

import logging
import os
import sys
import time

from speechbrain_xfer.curves.forgetting import report_forgetting
from speechbrain_xfer.curves.grid import check_inputs, grid, run_grid
from speechbrain_xfer.curves.launch import run_recipe
from speechbrain_xfer.curves.report import read_summaries, write_report

logger = logging.getLogger(__name__)

DEMO_TASKS = ("kws", "intent", "emotion")
DEMO_METHODS = ("scratch", "finetune", "l2sp", "frozen")
DEMO_SHOTS = (1, 3, 10)
PRETRAIN_YAML = os.path.join("pretrain", "hparams", "ctc_conv.yaml")


def pretrain(out, corpus, recipes_root, threads=None):
    """Runs the pretraining recipe unless its encoder folder exists; returns the folder."""
    folder = os.path.join(out, "pretrain")
    encoder = os.path.join(folder, "encoder")
    if os.path.isfile(os.path.join(encoder, "encoder.ckpt")):
        logger.info("pretrained encoder found in %s", encoder)
        return encoder
    command = [sys.executable, os.path.join(recipes_root, "pretrain", "train.py"),
               os.path.join(recipes_root, PRETRAIN_YAML), "--data_folder", os.path.join(corpus, "asr", "source"),
               "--output_folder", folder, "--export_folder", encoder]  # fmt: skip
    logger.info("pretraining the source encoder (CTC on asr/source); log: %s", os.path.join(folder, "log.txt"))
    os.makedirs(folder, exist_ok=True)
    code = run_recipe(command + ["--noprogressbar"], os.path.join(folder, "log.txt"), threads, append=True)
    if code != 0:
        raise RuntimeError(f"pretraining failed (exit {code}); see {os.path.join(folder, 'log.txt')}")
    return encoder


def run_demo(out, synth_options, recipes_root, jobs=2):
    """Builds the corpus, pretrains, runs the demo grid and writes the report; returns an exit code."""
    from speechbrain_xfer.data.synth import TASKS, synthesize_task

    start = time.perf_counter()
    corpus = os.path.join(out, "data")
    for task in TASKS:
        synthesize_task(task, corpus, synth_options, jobs=jobs)
    logger.info("corpus ready in %s (%.0f s)", corpus, time.perf_counter() - start)

    runs = grid(DEMO_TASKS, DEMO_METHODS, DEMO_SHOTS, [1], out)
    check_inputs(runs, recipes_root, corpus)
    encoder = os.path.join(out, "pretrain", "encoder")

    def pretrain_encoder():
        pretrain(out, corpus, recipes_root, threads=1 if jobs > 1 else None)
        logger.info("pretraining done (%.0f s since start)", time.perf_counter() - start)

    # Training from scratch needs no pretrained encoder: those runs take the
    # other core while the pretraining runs; the transfer runs follow it.
    failed = run_grid(runs, recipes_root, corpus, encoder, jobs=jobs, extra_overrides=["--noprogressbar"],
                      before=pretrain_encoder)  # fmt: skip
    summaries = read_summaries(runs)
    rows = write_report(summaries, out, methods_order=DEMO_METHODS)
    report_forgetting(runs, summaries, encoder, corpus, out)
    logger.info("demo done in %.0f s: %d runs in %s (curves.csv, curves.md, curves.png)",
                time.perf_counter() - start, len(rows), out)  # fmt: skip
    for report in ("curves.md", "forgetting.md"):
        if os.path.isfile(os.path.join(out, report)):
            with open(os.path.join(out, report)) as f:
                print(f.read())
    if failed:
        logger.error("%d runs failed; run the same command again to retry only them", len(failed))
        return 1
    return 0
