"""The core without the demo extra: the Brains, regularizers, encoders, export and inference import and run
without espeak-ng and matplotlib, and the demo's tools say which extra they need."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_ONLY = ("espeakng_loader", "matplotlib")

# An environment without the extra: importing either package fails, as it does where it is not installed.
WITHOUT_EXTRA = f"""
import sys
for name in {DEMO_ONLY!r}:
    sys.modules[name] = None
"""


def run_without_extra(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA + code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_core_imports_and_trains_a_step_without_the_demo_extra(tmp_path):
    result = run_without_extra(
        f"""
import torch
import speechbrain_xfer.cli, speechbrain_xfer.experiment
from speechbrain_xfer.brains import CTCBrain, TransferBrain, UtteranceClassifierBrain
from speechbrain_xfer.encoders import ConvEncoder, GE2EEncoder, HFEncoder
from speechbrain_xfer.hub.export import export_experiment
from speechbrain_xfer.hub.loading import load_export
from speechbrain_xfer.lobes import AttentionPooling, ClassifierHead
from speechbrain_xfer.regularization import L2SP
encoder = ConvEncoder(input_dim=8, channels=[8], strides=[1], rnn_dim=4)
head = ClassifierHead(AttentionPooling(input_dim=8), n_classes=3)
reg = L2SP(encoder, head, alpha=0.1)
reg.capture()
with torch.no_grad():
    next(encoder.parameters()).add_(1.0)
loss = head(encoder(torch.randn(2, 10, 8)), torch.ones(2)).logsumexp(-1).mean() + reg()
loss.backward()
loaded = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in {DEMO_ONLY!r})
print("core ok", float(reg().detach()) > 0, loaded)
""",
        tmp_path,
    )
    assert "core ok True []" in result.stdout, result.stdout


def test_the_demo_tools_name_the_extra_they_need(tmp_path):
    result = run_without_extra(
        """
import logging, os
logging.basicConfig(level=logging.WARNING)
from speechbrain_xfer.synthspeech.espeak import Espeak, SynthesisError
try:
    Espeak()
except SynthesisError as error:
    print("synth:", error)
from speechbrain_xfer.curves.grid import Run
from speechbrain_xfer.curves.report import write_report
summary = {"metric": "accuracy", "higher_is_better": True, "test": {"accuracy": 0.5}, "valid_history": [[1, 0.5]],
           "train_time_s": 1.0, "steps": 1}
write_report({Run("kws", "scratch", 1, 1, "out"): summary}, "report")
print("files:", sorted(os.listdir("report")))
""",
        tmp_path,
    )
    assert "synth: the SynthSpeech corpus needs espeak-ng from the demo extra: pip install" in result.stdout
    assert "files: ['curves.csv', 'curves.md']" in result.stdout
    assert "curves.png not drawn: matplotlib is not installed (pip install 'speechbrain_xfer[demo]')" in result.stderr


def test_the_demo_tools_are_an_extra_and_the_two_commands_install_it():
    text = (REPO / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    core = text[text.index("dependencies = [") : text.index("[project.optional-dependencies]")]
    assert "espeakng-loader" not in core and "matplotlib" not in core
    assert 'demo = ["espeakng-loader>=0.2.4", "matplotlib>=3.8.4"]' in text
    assert "-e '.[dev,demo,slurm,fused]'" in (REPO / "Makefile").read_text()
    assert 'slurm = ["submitit>=1.5"]' in text and "submitit" not in core
    assert 'fused = ["ninja>=1.11"]' in text and "ninja" not in core
