"""The warning signal without a scheduler: a real KWS run, started as a SLURM job starts it
(:class:`~speechbrain_xfer.curves.slurm.RecipeJob`), gets USR2 after its first epoch; it saves an intra-epoch
checkpoint and exits, and the same job run again (as a requeue runs it) ends with the weights, optimizer
states and L2-SP anchors of the same run never interrupted (max difference 0.0)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from speechbrain_xfer.curves.slurm import RecipeJob
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.preemption import CHECKPOINTED_EXIT

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "SynthSpeech" / "KWS"


def command(data, pretrained, out):
    return [
        sys.executable,
        str(RECIPE / "train.py"),
        str(RECIPE / "hparams" / "l2sp.yaml"),
        "--data_folder",
        str(data),
        "--pretrained_source",
        str(pretrained),
        "--output_folder",
        str(out),
        "--number_of_epochs",
        "4",
        "--steps_per_epoch",
        "6",
        "--batch_size",
        "4",
        "--noprogressbar",
    ]


def test_a_run_warned_by_the_signal_saves_exits_and_resumes_to_the_same_weights(
    tiny_corpus, checkpoint_difference, tmp_path, monkeypatch
):
    data = tiny_corpus[0] / "words" / "target"
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    torch.manual_seed(123)
    encoder = ConvEncoder(40, channels=[128, 192, 192], strides=[2, 2, 1], rnn_dim=160, dropout=0.15)
    torch.save(encoder.state_dict(), pretrained / "encoder.ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = subprocess.run(command(data, pretrained, tmp_path / "reference"), env=env, capture_output=True)
    assert reference.returncode == 0, reference.stderr[-4000:]

    out = tmp_path / "warned"
    out.mkdir()
    job = RecipeJob(command(data, pretrained, out), str(out / "log.txt"), threads=1, stop_wait_s=0.1)

    def warn_after_the_first_epoch():  # as slurmstepd signals every process of the job
        while not (out / "save").is_dir() or not any((out / "save").glob("CKPT+*")):
            time.sleep(0.05)
        os.kill(job._pid, signal.SIGUSR2)

    threading.Thread(target=warn_after_the_first_epoch, daemon=True).start()
    with pytest.raises(RuntimeError, match=f"exited with code {CHECKPOINTED_EXIT}"):
        job()
    log = (out / "log.txt").read_text()
    assert "checkpoint saved: the same command resumes" in log, log[-4000:]
    assert "epoch: 4" not in log

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert job() == 0
    log = (out / "log.txt").read_text()
    assert "requeued (restart 1)" in log and "epoch: 4" in log
    assert checkpoint_difference(out, tmp_path / "reference") == 0.0
