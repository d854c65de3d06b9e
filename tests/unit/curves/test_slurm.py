"""The SLURM launcher's parts that need no cluster: its sbatch options from the command line, and the job's
call (the run's command, its log, its exit code, and the warning signal passed on to the run)."""

import os
import pickle
import signal
import sys
import threading
import time

import pytest

from speechbrain_xfer.cli import build_parser
from speechbrain_xfer.cli.common import launcher
from speechbrain_xfer.curves.slurm import RecipeJob, SlurmLauncher
from speechbrain_xfer.preemption import CHECKPOINTED_EXIT, SIGNAL_ENV


def parsed(*options):
    return build_parser().parse_args(["curve", *options])


def test_the_slurm_options_become_sbatch_options(tmp_path):
    args = parsed(
        "--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time", "90", "--slurm-cpus-per-run", "8",
        "--slurm-gpus-per-run", "2", "--slurm-mem-gb", "1.5", "--slurm-signal-delay", "300",
        "--slurm", "account=speech", "--slurm=--qos=low",
    )  # fmt: skip
    chosen = launcher(args, str(tmp_path))
    assert isinstance(chosen, SlurmLauncher) and chosen.folder == str(tmp_path / "slurm")
    assert chosen.executor_parameters() == {
        "time": 90,
        "cpus_per_task": 8,
        "nodes": 1,
        "ntasks_per_node": 1,
        "signal_delay_s": 300,
        "job_name": "sbx-run",
        "partition": "gpu",
        "gpus_per_node": 2,
        "mem": "1536M",
        "additional_parameters": {"account": "speech", "qos": "low"},
    }
    assert launcher(parsed(), str(tmp_path)) is None  # local: the default


def test_a_slurm_option_without_a_value_is_named(tmp_path):
    with pytest.raises(SystemExit, match="--slurm account: write KEY=VALUE"):
        launcher(parsed("--launcher", "slurm", "--slurm", "account"), str(tmp_path))


def test_the_job_runs_the_command_into_the_runs_log_and_fails_on_an_exit_code(tmp_path):
    log = tmp_path / "log.txt"
    script = f"import os; print('threads', os.environ['OMP_NUM_THREADS'], os.environ['{SIGNAL_ENV}'])"
    assert RecipeJob([sys.executable, "-c", script], str(log), threads=3)() == 0
    assert log.read_text() == "threads 3 USR2\n"
    with pytest.raises(RuntimeError, match="the run exited with code 2$"):
        RecipeJob([sys.executable, "-c", "raise SystemExit(2)"], str(log), stop_wait_s=0.1)()


def test_on_the_warning_signal_the_run_saves_and_exits_and_the_same_run_is_resubmitted(tmp_path):
    # A stand-in for a recipe run: it exits on the warning signal, as TransferBrain does after its save.
    run = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGUSR2, lambda *a: sys.exit({CHECKPOINTED_EXIT}))\n"
        "print('listening', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "log.txt"
    job = RecipeJob([sys.executable, "-c", run], str(log), stop_wait_s=30)
    resubmitted = []

    class Requeued(Exception):
        pass

    def handler(signum, frame):  # what submitit's handler does in the job: checkpoint, requeue, exit
        resubmitted.append(job.checkpoint())
        raise Requeued

    def warn_when_listening():
        while "listening" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, handler)
    threading.Thread(target=warn_when_listening, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(Requeued):
            job()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert time.monotonic() - started < 20  # the handler waited for the run to exit, not for stop_wait_s
    again = resubmitted[0].function
    assert (again.command, again.log_path, again.threads) == (job.command, job.log_path, job.threads)
    assert pickle.loads(pickle.dumps(again)).command == job.command
