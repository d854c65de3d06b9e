import subprocess
import sys

from speechbrain_xfer.cli import main
from speechbrain_xfer.synthspeech.synth import read_manifest


def test_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "speechbrain_xfer.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "synth" in out and "demo" in out


def test_synth_writes_a_task_corpus(tmp_path, capsys):
    assert (
        main(["synth", "--task", "words", "--out", str(tmp_path), "--speakers", "4", "--scale", "0.1", "--jobs", "2"])
        == 0
    )
    assert "words/target" in capsys.readouterr().out
    rows = read_manifest(tmp_path / "words" / "target" / "test.csv")
    assert {row["word"] for row in rows} == {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
