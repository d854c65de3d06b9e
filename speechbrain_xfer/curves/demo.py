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


# The source stages, in order, each fine-tuning the export of the one before:
# (run folder under <out>/pretrain, script and YAML under pretrain/, corpus folder).
SOURCE_STAGES = (
    ("", "train.py", "ctc_conv.yaml", os.path.join("asr", "source")),  # CTC on the source sentences
    ("words", "train_words.py", "words_conv.yaml", os.path.join("words", "source")),  # then the source words
)
# The stage whose export each task's transfer runs start from: the last one for keywords, the first otherwise.
TASK_STAGES = {"kws": "words"}


def source_folders(out):
    """``{stage: export folder}`` of the source stages, by their run folder ("" for the first)."""
    return {stage: os.path.join(out, "pretrain", stage, "encoder") for stage, *_ in SOURCE_STAGES}


def task_sources(out, tasks):
    """``{task: pretrained_source}`` for the tasks whose transfer runs start from a later source stage."""
    folders = source_folders(out)
    return {task: folders[TASK_STAGES[task]] for task in tasks if task in TASK_STAGES}


def pretrain(out, corpus, recipes_root, threads=None):
    """Runs the source stages whose export folder does not exist yet; returns the first stage's export."""
    folders, previous = source_folders(out), None
    for stage, script, yaml, data in SOURCE_STAGES:
        encoder = folders[stage]
        folder = os.path.dirname(encoder)
        if os.path.isfile(os.path.join(encoder, "encoder.ckpt")):
            logger.info("source encoder found in %s", encoder)
        else:
            command = [sys.executable, os.path.join(recipes_root, "pretrain", script),
                       os.path.join(recipes_root, "pretrain", "hparams", yaml), "--data_folder",
                       os.path.join(corpus, data), "--output_folder", folder, "--export_folder", encoder,
                       *(["--pretrained_source", previous] if previous else []), "--noprogressbar"]  # fmt: skip
            log = os.path.join(folder, "log.txt")
            logger.info("source stage %s (%s on %s); log: %s", yaml, script, data, log)
            os.makedirs(folder, exist_ok=True)
            code = run_recipe(command, log, threads, append=True)
            if code != 0:
                raise RuntimeError(f"source stage {yaml} failed (exit {code}); see {log}")
        previous = encoder
    return folders[""]


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
    encoder = source_folders(out)[""]

    def pretrain_encoder():
        pretrain(out, corpus, recipes_root, threads=1 if jobs > 1 else None)
        logger.info("pretraining done (%.0f s since start)", time.perf_counter() - start)

    # Training from scratch needs no pretrained encoder: those runs take the
    # other core while the pretraining runs; the transfer runs follow it.
    failed = run_grid(runs, recipes_root, corpus, encoder, jobs=jobs, extra_overrides=["--noprogressbar"],
                      before=pretrain_encoder, task_sources=task_sources(out, DEMO_TASKS))  # fmt: skip
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
