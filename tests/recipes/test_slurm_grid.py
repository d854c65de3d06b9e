"""``sbx curve --launcher slurm`` against a real SLURM: slurmctld and slurmd on this machine.

CI starts the single-node cluster (``bash tests/slurm/cluster.sh install && bash tests/slurm/cluster.sh start``,
as root, from ``.ci/run``) and requires these tests; elsewhere, without a cluster that answers, they are
skipped with the reason. Every job runs real KWS recipe runs on the tiny corpus, one CPU each.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

RECIPE_ARGS = "--number_of_epochs=2 --steps_per_epoch=2 --batch_size=4 --noprogressbar"
SLURM_ARGS = ["--launcher", "slurm", "--slurm-cpus-per-run", "1", "--slurm-poll", "1"]


@pytest.fixture(scope="module")
def cluster():
    """Skips (fails under CI) unless sbatch reaches a controller with a node that takes jobs."""
    how = "as root: bash tests/slurm/cluster.sh install && bash tests/slurm/cluster.sh start"
    reason = None
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        reason = f"no SLURM client here (sbatch, squeue); {how}"
    else:
        result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or not any(s.strip() in ("idle", "mix", "alloc") for s in result.stdout.split()):
            reason = f"no SLURM node takes jobs (sinfo: {(result.stdout + result.stderr).strip()!r}); {how}"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def sbx_curve(*args, wait=True):
    command = [sys.executable, "-m", "speechbrain_xfer.cli", "curve", *map(str, args)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=900)
    return process.returncode, stdout, stderr


def grid_args(root, pretrained, out, methods="scratch,l2sp", seeds=2, shots=1, recipe_args=RECIPE_ARGS):
    return [
        "--task",
        "kws",
        "--shots",
        shots,
        "--methods",
        methods,
        "--seeds",
        seeds,
        "--data-folder",
        root,
        "--pretrained-source-kws",
        pretrained,
        "--out",
        out,
        "--recipe-args",
        recipe_args,
    ]


def rows(out):
    with open(out / "curves.csv", newline="") as f:
        return sorted((r["method"], r["shots"], r["seed"], r["value"], r["steps"]) for r in csv.DictReader(f))


def job_id(run_folder, timeout=120):
    """The SLURM job of a run, once the launcher has recorded it."""
    record = run_folder / "slurm_job.json"
    deadline = time.monotonic() + timeout
    while not record.is_file():
        assert time.monotonic() < deadline, f"no {record}"
        time.sleep(0.5)
    return json.loads(record.read_text())["job_id"]


def job_state(job):
    result = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i %T", "-j", job], capture_output=True, text=True
    )
    states = dict(line.split() for line in result.stdout.splitlines() if line.strip())
    return states.get(job)


def wait_for(condition, what, timeout=180):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def local_and_slurm(cluster, tiny_corpus, pretrained_encoder, tmp_path_factory):
    """The same grid (2 methods x 1 shot x 2 seeds) on the local launcher and on SLURM, one thread per run."""
    root, _ = tiny_corpus
    local, slurm = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    code, _, stderr = sbx_curve(*grid_args(root, pretrained_encoder, local), "--jobs", 2, "--threads", 1)
    assert code == 0, stderr[-4000:]
    code, _, stderr = sbx_curve(*grid_args(root, pretrained_encoder, slurm), *SLURM_ARGS)
    assert code == 0, stderr[-4000:]
    return local, slurm, stderr


def test_slurm_runs_give_the_local_launchers_accuracies(local_and_slurm):
    local, slurm, stderr = local_and_slurm
    assert "4 runs submitted to SLURM" in stderr
    assert len(rows(slurm)) == 4
    assert rows(slurm) == rows(local)
    # Every run's folder is the local launcher's, plus its job record; the log is the recipe's own.
    run = slurm / "runs" / "kws" / "l2sp" / "k1" / "seed2"
    assert {"log.txt", "summary.json", "slurm_job.json"} <= set(os.listdir(run))
    assert "epoch: 2" in (run / "log.txt").read_text()


def test_a_second_call_submits_nothing_and_reports_again(local_and_slurm, tiny_corpus, pretrained_encoder):
    _, slurm, _ = local_and_slurm
    before = {p: p.stat().st_mtime for p in slurm.glob("runs/*/*/*/*/log.txt")}
    code, _, stderr = sbx_curve(*grid_args(tiny_corpus[0], pretrained_encoder, slurm), *SLURM_ARGS)
    assert code == 0, stderr[-4000:]
    assert "4 already done, 0 for SLURM" in stderr and "submitted" not in stderr
    assert {p: p.stat().st_mtime for p in before} == before
    assert len(rows(slurm)) == 4


def test_a_grid_the_local_launcher_ran_is_finished_on_slurm(local_and_slurm, tiny_corpus, pretrained_encoder):
    local, _, _ = local_and_slurm
    before = {p: p.stat().st_mtime for p in local.glob("runs/*/*/*/*/log.txt")}
    args = grid_args(tiny_corpus[0], pretrained_encoder, local, seeds=3)  # one more seed than the local grid ran
    code, _, stderr = sbx_curve(*args, *SLURM_ARGS)
    assert code == 0, stderr[-4000:]
    assert "6 runs in the grid, 4 already done, 2 for SLURM" in stderr
    assert {p: p.stat().st_mtime for p in before} == before  # the local runs were not run again
    assert sorted({r[2] for r in rows(local)}) == ["1", "2", "3"] and len(rows(local)) == 6


def test_a_cancelled_job_is_reported_failed_with_its_log(cluster, tiny_corpus, pretrained_encoder, tmp_path):
    long_run = "--number_of_epochs=200 --steps_per_epoch=4 --batch_size=4 --noprogressbar"
    args = grid_args(tiny_corpus[0], pretrained_encoder, tmp_path, methods="scratch", seeds=1, recipe_args=long_run)
    process = sbx_curve(*args, *SLURM_ARGS, wait=False)
    run = tmp_path / "runs" / "kws" / "scratch" / "k1" / "seed1"
    job = job_id(run)
    wait_for(lambda: job_state(job) == "RUNNING", f"job {job} to run")
    subprocess.run(["scancel", job], check=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr[-4000:]
    # With the error the job raised when it lived to write it (submitit's result file), else after a grace period.
    failure = (
        rf"kws/scratch/k1/seed1 failed \(SLURM job {job}, CANCELLED(: RuntimeError: the run was stopped by SIGTERM)?\)"
    )
    assert re.search(failure + rf"; see {re.escape(str(run / 'log.txt'))}", stderr), stderr[-4000:]
    assert "1 runs failed" in stderr


def test_a_run_that_fails_in_its_job_is_reported_with_the_error_the_job_raised(
    cluster, tiny_corpus, pretrained_encoder, tmp_path
):
    recipe = f"{RECIPE_ARGS} --no_such_key=1"  # passes the grid's checks, fails in the job
    args = grid_args(tiny_corpus[0], pretrained_encoder, tmp_path, methods="scratch", seeds=1, recipe_args=recipe)
    code, _, stderr = sbx_curve(*args, *SLURM_ARGS)
    run = tmp_path / "runs" / "kws" / "scratch" / "k1" / "seed1"
    job = json.loads((run / "slurm_job.json").read_text())["job_id"]
    assert code == 1, stderr[-4000:]
    # The error comes from submitit's result file: the launcher saw the job end, no grace period.
    failure = rf"kws/scratch/k1/seed1 failed \(SLURM job {job}, \w+: RuntimeError: the run exited with code \d+\)"
    assert re.search(failure + rf"; see {re.escape(str(run / 'log.txt'))} and \S+{job}_0_log\.err", stderr), stderr
    assert "no_such_key" in (run / "log.txt").read_text()


def test_a_preempted_job_saves_is_requeued_and_ends_with_the_uninterrupted_weights(
    cluster, tiny_corpus, pretrained_encoder, checkpoint_difference, tmp_path
):
    recipe = "--number_of_epochs=6 --steps_per_epoch=6 --batch_size=4 --noprogressbar"
    args = dict(methods="l2sp", seeds=1, shots=3, recipe_args=recipe)
    reference, preempted = tmp_path / "reference", tmp_path / "preempted"
    code, _, stderr = sbx_curve(*grid_args(tiny_corpus[0], pretrained_encoder, reference, **args), "--threads", 1)
    assert code == 0, stderr[-4000:]

    slurm = [*SLURM_ARGS, "--slurm-signal-delay", 60]
    process = sbx_curve(*grid_args(tiny_corpus[0], pretrained_encoder, preempted, **args), *slurm, wait=False)
    run = preempted / "runs" / "kws" / "l2sp" / "k3" / "seed1"
    job = job_id(run)
    # After the first epoch's checkpoint the run listens for the warning; SLURM sends it before a preemption
    # or the time limit (sbatch --signal=USR2@<delay>), as scancel --signal does here.
    wait_for(lambda: (run / "save").is_dir() and any((run / "save").glob("CKPT+*")), "the first checkpoint")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_for(lambda: job_state(job) == "PENDING", f"job {job} to be requeued")
    # SLURM holds a requeued job for two minutes before it may start again; the test does not wait for that.
    # But not within the second of the requeue either: slurmd refuses a job whose credential is from the second
    # its last one was revoked in ("Job credential revoked"), and the job then really fails.
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-4000:]

    log = (run / "log.txt").read_text()
    assert "checkpoint saved: the same command resumes" in log  # saved on the signal, mid-training
    assert "SLURM job requeued (restart 1)" in log
    assert checkpoint_difference(run, reference / run.relative_to(preempted)) == 0.0
    assert rows(preempted) == rows(reference)


def sbx(command, *args):
    process = subprocess.run(
        [sys.executable, "-m", "speechbrain_xfer.cli", command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return process.returncode, process.stderr


def test_sbx_tune_queues_every_learning_rate_before_waiting(cluster, tiny_corpus, pretrained_encoder, tmp_path):
    args = grid_args(tiny_corpus[0], pretrained_encoder, tmp_path, methods="scratch", seeds=1)
    code, stderr = sbx("tune", *args, "--lrs", "0.01,0.0001", *SLURM_ARGS)
    assert code == 0, stderr[-4000:]
    submitted = [line for line in stderr.splitlines() if "runs submitted to SLURM" in line]
    assert len(submitted) == 2 and stderr.index(submitted[1]) < stderr.index("jobs:"), stderr[-4000:]
    with open(tmp_path / "tuning.csv", newline="") as f:
        assert sorted(r["lr"] for r in csv.DictReader(f)) == ["0.0001", "0.01"]
    saved = (tmp_path / "lr0.0001" / "runs" / "kws" / "scratch" / "k1" / "seed1" / "hyperparams.yaml").read_text()
    assert "lr: 0.0001" in [line.split("#")[0].strip() for line in saved.splitlines()]


def test_sbx_rank_check_fine_tunes_its_candidates_on_slurm(cluster, tiny_corpus, pretrained_encoder, tmp_path):
    args = [f"conv={pretrained_encoder}", "--task", "kws", "--shots", 3, "--seeds", 1, "--data-folder", tiny_corpus[0]]
    args += ["--out", tmp_path, f"--recipe-args={RECIPE_ARGS}"]
    code, stderr = sbx("rank-check", *args, *SLURM_ARGS)
    assert code == 0, stderr[-4000:]
    assert "2 runs submitted to SLURM" in stderr
    with open(tmp_path / "transferability.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["candidate"] == "conv" and 0 <= float(row["finetune_acc"]) <= 100
    assert (tmp_path / "runs" / "conv" / "runs" / "kws" / "frozen" / "k3" / "seed1" / "slurm_job.json").is_file()
