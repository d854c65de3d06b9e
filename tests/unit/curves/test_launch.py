"""run_recipe: a forked run behaves as ``python script args...`` would (output, exit code, threads, imports)."""

import sys

import pytest

from speechbrain_xfer.curves import launch

SCRIPT = """
import os, sys, torch
print("argv", sys.argv[1:], "threads", torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"))
print("preloaded", "speechbrain_xfer.experiment" in sys.modules and "speechbrain" in sys.modules)
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def test_forked_run_gets_arguments_threads_log_and_exit_code(script, tmp_path):
    assert launch._forkserver() is not None  # Linux has a forkserver: the fast path is the one tested here
    log = tmp_path / "log.txt"
    assert launch.run_recipe([sys.executable, str(script), "3", "--x"], str(log), threads=1) == 3
    text = log.read_text()
    assert "argv ['3', '--x'] threads 1 1" in text
    assert "preloaded True" in text  # the server imported them: the run did not pay for it
    assert "to stderr" in text


def test_append_keeps_the_earlier_log_and_a_crash_is_logged(script, tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("earlier run\n")
    assert launch.run_recipe([sys.executable, str(script), "0"], str(log), append=True) == 0
    assert launch.run_recipe([sys.executable, str(tmp_path / "missing.py")], str(log), append=True) == 1
    text = log.read_text()
    assert text.startswith("earlier run\n") and "argv ['0']" in text
    assert "FileNotFoundError" in text and "missing.py" in text


def test_without_a_forkserver_it_runs_a_subprocess(script, tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "_forkserver", lambda: None)
    log = tmp_path / "log.txt"
    assert launch.run_recipe([sys.executable, str(script), "2"], str(log), threads=2) == 2
    assert "argv ['2'] threads 2 2" in log.read_text()
