"""A real recipe killed (SIGKILL) at random points, some in the middle of a checkpoint save, then resumed.

After each kill the identical command runs again, until one finishes; the run
must end with the weights, optimizer states, validation scores and L2-SP
anchors of the same command never interrupted.
"""

import json
import os
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from speechbrain_xfer.encoders.conv import ConvEncoder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("kill_resume_driver.py")
TRAIN = ROOT / "recipes" / "SynthSpeech" / "KWS" / "train.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# Kills in a save (at the N-th file a process saves) alternate with kills right after a random optimizer step
# (not a random time, which a machine slower or faster than when the reference ran would miss); the seed fixes them.
KILLS = ("save", "step", "save", "step")
SEED = 20240611


@pytest.fixture
def pretrained(tmp_path):
    """A stand-in for the pretraining recipe's export: an encoder of the KWS recipe's architecture."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    torch.manual_seed(123)
    encoder = ConvEncoder(40, channels=[128, 192, 192], strides=[2, 2, 1], rnn_dim=160, dropout=0.15)
    torch.save(encoder.state_dict(), folder / "encoder.ckpt")
    return folder


def command(kill_after, data, pretrained, out):
    return [
        sys.executable,
        str(DRIVER),
        str(kill_after),
        str(TRAIN),
        "hparams/l2sp.yaml",
        "--data_folder",
        str(data),
        "--pretrained_source",
        str(pretrained),
        "--output_folder",
        str(out),
        "--number_of_epochs",
        "3",
        "--steps_per_epoch",
        "3",
        "--batch_size",
        "4",
        "--noprogressbar",
    ]


def run(args):
    """Runs to the end (or to the kill the driver was told to make); returns (returncode, stdout, stderr)."""
    proc = subprocess.run(args, env=ENV, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def final_state(out):
    """The newest checkpoint's files (weights, optimizers, anchors, counters) and the run's summary."""
    folders = list((out / "save").glob("CKPT+*"))
    newest = max(folders, key=lambda f: yaml.safe_load((f / "CKPT.yaml").read_text())["unixtime"])
    # torch.save writes zip archives; the epoch counter, the Brain's step counts and the data loader, YAML text.
    state = {
        p.stem: torch.load(p, weights_only=True) if zipfile.is_zipfile(p) else p.read_text()
        for p in newest.glob("*.ckpt")
    }
    # The run's record: its validation history must match; the seconds of training it counts cannot.
    state["run_record"] = json.loads(state["run_record"])["valid_history"]
    return state, json.loads((out / "summary.json").read_text())


def test_killed_and_resumed_run_ends_like_the_uninterrupted_one(tiny_corpus, pretrained, max_difference, tmp_path):
    data = tiny_corpus[0] / "words" / "target"
    code, stdout, stderr = run(command(0, data, pretrained, tmp_path / "reference"))
    assert code == 0, stderr[-4000:]
    saves_per_run = int(re.search(r"torch.save calls: (\d+)", stdout).group(1))
    steps_per_run = int(re.search(r"optimizer steps: (\d+)", stdout).group(1))

    rng, out, log = random.Random(SEED), tmp_path / "killed", []
    for kind in KILLS:
        if kind == "save":
            n = rng.randint(1, saves_per_run // 2)  # in the first half: a resumed process saves less
            code, _, stderr = run(command(n, data, pretrained, out))
        else:  # "step"
            n = f"step:{rng.randint(1, steps_per_run // 4)}"  # early: a resumed process has fewer steps left
            code, _, stderr = run(command(n, data, pretrained, out))
        log.append((kind, n, code))
        assert code in (0, -9), f"{log}: {stderr[-4000:]}"
    assert [kind for kind, _, code in log if code == -9].count("save") >= 1, log
    assert [code for _, _, code in log].count(-9) >= 2, log
    for _ in range(3):
        code, _, stderr = run(command(0, data, pretrained, out))
        if code == 0:
            break
    assert code == 0, f"{log}: the resumed run failed: {stderr[-4000:]}"

    (resumed, resumed_summary), (reference, reference_summary) = final_state(out), final_state(tmp_path / "reference")
    assert max_difference(resumed, reference) <= 1e-6, log
    assert resumed_summary["valid_history"] == reference_summary["valid_history"]
    assert resumed_summary["test"] == reference_summary["test"]
    anchors = {
        k.removeprefix("anchor__").replace("__", "."): v
        for k, v in resumed["regularizer_l2sp"].items()
        if k.startswith("anchor__")
    }
    pretrained_weights = torch.load(pretrained / "encoder.ckpt", weights_only=True)
    assert anchors and all(torch.equal(v, pretrained_weights[k]) for k, v in anchors.items())
    assert not list((out / "save").glob(".*")), "a staging or trash folder was left behind"
