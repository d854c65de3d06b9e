"""The offline demo: SynthSpeech corpus -> source pretraining -> learning curves.

Every stage skips work already done, so an interrupted demo resumes where it
stopped when the same command runs again.
"""

import logging
import os
import sys
import time

from speechbrain_xfer.curves.forgetting import report_forgetting
from speechbrain_xfer.curves.grid import cache_folder, check_inputs, grid, run_grid
from speechbrain_xfer.curves.launch import run_recipe
from speechbrain_xfer.curves.report import read_summaries, write_report

logger = logging.getLogger(__name__)

DEMO_TASKS = ("kws", "intent", "emotion")
DEMO_METHODS = ("scratch", "finetune", "l2sp", "frozen")
HF_DEMO_METHODS = ("hf_scratch", "hf_finetune", "hf_l2sp", "hf_frozen", "hf_lora", "hf_layer_decay")
# Two points of the curve keep the ConvEncoder demo within 10 minutes on 2 cores (1, 3 and 10 shots took
# 14.6 min; `sbx curve` runs any shots); the hub-format encoder's demo also runs 3 shots, a target of its grid.
DEMO_SHOTS = (1, 10)
HF_DEMO_SHOTS = (1, 3, 10)


# The source stages, in order, each fine-tuning the export of the one before:
# (run folder under <out>/pretrain, script and YAML under pretrain/, corpus folder).
SOURCE_STAGES = (
    ("", "train.py", "ctc_conv.yaml", os.path.join("asr", "source")),  # CTC on the source sentences
    ("words", "train_words.py", "words_conv.yaml", os.path.join("words", "source")),  # then the source words
)
# The hub-format encoder's: the CTC stage above, then a Whisper-architecture encoder trained with CTC and the
# first stage's posteriors distilled into it (its --pretrained_source).
HF_SOURCE_STAGES = (SOURCE_STAGES[0], ("hf", "train.py", "ctc_whisper.yaml", os.path.join("asr", "source")))
# The stage whose export each task's transfer runs start from: the last one for keywords, the first otherwise.
TASK_STAGES = {"kws": "words"}


def source_folders(out, stages=SOURCE_STAGES):
    """``{stage: export folder}`` of the source stages, by their run folder ("" for the first)."""
    return {stage: os.path.join(out, "pretrain", stage, "encoder") for stage, *_ in stages}


def _exported(folder):
    """Whether a source stage's export is complete: an sbx export, or a hub-format encoder folder."""
    from speechbrain_xfer.encoders.hf_folders import is_complete

    return os.path.isfile(os.path.join(folder, "encoder.ckpt")) or is_complete(folder)


def task_sources(out, tasks):
    """``{task: pretrained_source}`` for the tasks whose transfer runs start from a later source stage."""
    folders = source_folders(out)
    return {task: folders[TASK_STAGES[task]] for task in tasks if task in TASK_STAGES}


def pretrain(out, corpus, recipes_root, threads=None, stages=SOURCE_STAGES):
    """Runs the source stages whose export folder does not exist yet; returns ``{stage: export folder}``."""
    folders, previous = source_folders(out, stages), None
    for stage, script, yaml, data in stages:
        encoder = folders[stage]
        folder = os.path.dirname(encoder)
        if _exported(encoder):
            logger.info("source encoder found in %s", encoder)
        else:
            command = [
                sys.executable,
                os.path.join(recipes_root, "pretrain", script),
                os.path.join(recipes_root, "pretrain", "hparams", yaml),
                "--data_folder",
                os.path.join(corpus, data),
                "--output_folder",
                folder,
                "--export_folder",
                encoder,
                *(["--pretrained_source", previous] if previous else []),
                "--noprogressbar",
            ]
            log = os.path.join(folder, "log.txt")
            logger.info("source stage %s (%s on %s); log: %s", yaml, script, data, log)
            os.makedirs(folder, exist_ok=True)
            code = run_recipe(command, log, threads, append=True)
            if code != 0:
                raise RuntimeError(f"source stage {yaml} failed (exit {code}); see {log}")
        previous = encoder
    return folders


def run_demo(out, synth_options, recipes_root, jobs=2, encoder="conv"):
    """Builds the corpus, pretrains, runs the demo grid and writes the report; returns an exit code.

    ``encoder="hf"``: the hub-format encoder's source stages and ``hf_*`` recipes instead, with the report
    in ``<out>/hf``; the corpus and the ConvEncoder's CTC stage (its teacher) are shared with the default demo.
    """
    from speechbrain_xfer.synthspeech.synth import TASKS, synthesize_task

    start = time.perf_counter()
    corpus = os.path.join(out, "data")
    for task in TASKS:
        synthesize_task(task, corpus, synth_options, jobs=jobs)
    logger.info("corpus ready in %s (%.0f s)", corpus, time.perf_counter() - start)

    hf = encoder == "hf"
    methods, shots, stages = (
        (HF_DEMO_METHODS, HF_DEMO_SHOTS, HF_SOURCE_STAGES) if hf else (DEMO_METHODS, DEMO_SHOTS, SOURCE_STAGES)
    )
    report_folder = os.path.join(out, "hf") if hf else out
    runs = grid(DEMO_TASKS, methods, shots, [1], out)
    check_inputs(runs, recipes_root, corpus)
    source = source_folders(out, stages)["hf" if hf else ""]

    # The conv demo's scratch runs take the other cores meanwhile; hf_scratch takes its architecture from the
    # source stage's export, so nothing runs beside the hf stages and they get every core.
    threads = 1 if jobs > 1 and not hf else None

    def pretrain_encoder():
        pretrain(out, corpus, recipes_root, threads=threads, stages=stages)
        logger.info("pretraining done (%.0f s since start)", time.perf_counter() - start)

    # Training from scratch needs no pretrained encoder: those runs take the
    # other core while the pretraining runs; the transfer runs follow it.
    failed = run_grid(
        runs,
        recipes_root,
        corpus,
        source,
        jobs=jobs,
        extra_overrides=["--noprogressbar"],
        before=pretrain_encoder,
        task_sources=task_sources(out, DEMO_TASKS),
        cache=cache_folder(out),
    )
    summaries = read_summaries(runs)
    rows = write_report(summaries, report_folder, methods_order=methods)
    if not hf:  # the forgetting measure decodes the ConvEncoder source's own test set
        report_forgetting(runs, summaries, source, corpus, out)
    logger.info(
        "demo done in %.0f s: %d runs in %s (curves.csv, curves.md, curves.png)",
        time.perf_counter() - start,
        len(rows),
        report_folder,
    )
    for report in ("curves.md", "forgetting.md"):
        if os.path.isfile(os.path.join(report_folder, report)):
            with open(os.path.join(report_folder, report)) as f:
                print(f.read())
    if failed:
        logger.error("%d runs failed; run the same command again to retry only them", len(failed))
        return 1
    return 0
