"""Grid runs as SLURM jobs, submitted through submitit.

``sbx curve``, ``sbx tune`` and ``sbx rank-check`` with ``--launcher slurm`` hand their pending runs to
:class:`SlurmLauncher`: one job per run, all of a grid in one job array (one ``sbatch`` call). Each job
runs the run's usual command line (:func:`~speechbrain_xfer.curves.grid.run_command`), with its output in
the run's own ``log.txt``, so a run's folder looks the same whichever launcher ran it, and a grid left on
one launcher is finished by the other (runs with a ``summary.json`` are skipped, unfinished ones resume
from their checkpoints).

A run records its job in ``slurm_job.json``. Called again while the jobs are still queued or running,
the command submits nothing: it waits for the same jobs and writes the report. Job states come from
``squeue`` (``sacct`` needs accounting, which not every cluster has). A job has ended when submitit's
result file says so (written when the run returned or raised, never on a requeue), or when it stays
out of the queue's live states for ``ended_after_s`` (a cancelled job has no result); one that ended
without a ``summary.json`` failed.

Preemption and time limits: ``sbatch --signal=USR2@<delay>`` warns a job before SLURM stops it.
submitit's handler calls :meth:`RecipeJob.checkpoint`, which passes the signal on to the recipe run;
the run saves a checkpoint and exits (:mod:`speechbrain_xfer.preemption`), and submitit requeues the job
(``scontrol requeue``), which resumes from that checkpoint.
"""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import time

from tqdm import tqdm

from speechbrain_xfer.preemption import CHECKPOINTED_EXIT, SIGNAL_ENV

logger = logging.getLogger(__name__)

#: squeue states of a job that has not ended (a requeued one is PENDING again).
LIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
RECORD = "slurm_job.json"


class RecipeJob:
    """One grid run inside its SLURM job: the recipe's command line, under ``torchrun`` for several GPUs.

    Arguments
    ---------
    command : list of str
        ``[python, train.py, args...]``, as the local launcher runs it.
    log_path : str
        The run's ``log.txt`` (appended to when the job was requeued).
    threads : int
        ``OMP_NUM_THREADS`` of the run: the job's CPUs.
    gpus : int
        GPUs of the job; more than one launches the run with ``torchrun``, one process per GPU.
    stop_wait_s : float
        How long the run may take to save its checkpoint after the warning signal.
    """

    def __init__(self, command, log_path, threads=1, gpus=0, stop_wait_s=60.0):
        self.command, self.log_path = list(command), log_path
        self.threads, self.gpus, self.stop_wait_s = threads, gpus, stop_wait_s
        self._pid = None

    def launch_command(self):
        """The command line the job runs: ``python -m torch.distributed.run ...`` for several GPUs.

        Example
        -------
        >>> RecipeJob(["python", "train.py", "x.yaml"], "log.txt", gpus=2).launch_command()[1:5]
        ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
        """
        if self.gpus > 1:
            return [self.command[0], "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.gpus}"] + (
                self.command[1:]
            )
        return self.command

    def __call__(self):
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(self.threads), SIGNAL_ENV: "USR2"}
        with open(self.log_path, "a" if restarts else "w") as log:
            if restarts:
                log.write(f"\n--- SLURM job requeued (restart {restarts}): resuming from the last checkpoint\n")
                log.flush()
            # The run ignores the warning signal until its Brain listens for it (SIG_IGN survives exec).
            process = subprocess.Popen(
                self.launch_command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
            )
            self._pid = process.pid
            # Polled, not waited on: submitit's signal handler (checkpoint below) runs in this thread.
            while (code := process.poll()) is None:
                time.sleep(1.0)
        if code == CHECKPOINTED_EXIT:  # the warning reached the run first; submitit's handler requeues the job
            time.sleep(self.stop_wait_s)
        if code < 0:  # scancel, a node failure: the report names the log
            raise RuntimeError(f"the run was stopped by {signal.Signals(-code).name}")
        if code != 0:
            raise RuntimeError(f"the run exited with code {code}")
        return code

    def checkpoint(self, *args, **kwargs):
        """submitit calls this on the warning signal: the run saves a checkpoint and exits; the requeued
        job runs the same command, which resumes from it."""
        import submitit

        if self._pid is not None and _alive(self._pid):
            os.kill(self._pid, signal.SIGUSR2)
            deadline = time.monotonic() + self.stop_wait_s
            while _alive(self._pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(self._pid):  # too slow: it resumes from its last checkpoint instead
                os.kill(self._pid, signal.SIGKILL)
        return submitit.helpers.DelayedSubmission(
            RecipeJob(self.command, self.log_path, self.threads, self.gpus, self.stop_wait_s)
        )

    def __getstate__(self):
        return {**self.__dict__, "_pid": None}


def _alive(pid):
    """Whether the child ``pid`` still runs (reaping it if it has ended)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def queue_states():
    """``{job id: state}`` of this user's jobs that squeue knows (array tasks as ``<array>_<task>``)."""
    result = subprocess.run(
        ["squeue", "--me", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed: {result.stderr.strip()}")
    return dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())


@dataclasses.dataclass
class SlurmLauncher:
    """Runs a grid's runs as SLURM jobs and waits for them; the options are ``sbatch``'s.

    Arguments
    ---------
    folder : str
        submitit's files (the job scripts, pickles and each job's own log): ``<folder>/<job id>/``.
    partition : str, optional
        ``--partition``.
    time_min : int
        ``--time`` per run, in minutes.
    cpus_per_run : int
        ``--cpus-per-task``, and the run's torch threads.
    gpus_per_run : int
        ``--gpus-per-node``; more than one runs the recipe under ``torchrun`` (DDP).
    mem_gb : float, optional
        ``--mem``.
    signal_delay_s : int
        Seconds between the warning signal and the kill (``--signal=USR2@<delay>``).
    sbatch : dict
        Any other sbatch options, ``{"account": "speech"}`` for ``--account=speech``.
    poll_s : float
        Seconds between two looks at the queue.
    max_requeues : int
        How many times a job may be requeued after a preemption or time limit.
    ended_after_s : float
        How long a job without submitit's result must stay out of the queue's live states before it counts as
        ended: a margin, so that a job on its way back to PENDING after a requeue is not taken for ended.
    """

    folder: str
    partition: str = None
    time_min: int = 60
    cpus_per_run: int = 1
    gpus_per_run: int = 0
    mem_gb: float = None
    signal_delay_s: int = 120
    sbatch: dict = dataclasses.field(default_factory=dict)
    poll_s: float = 10.0
    max_requeues: int = 10
    ended_after_s: float = 60.0

    def __post_init__(self):
        self._jobs = {}  # run -> job id

    def executor_parameters(self):
        """The ``SlurmExecutor.update_parameters`` of every job."""
        parameters = {
            "time": self.time_min,
            "cpus_per_task": self.cpus_per_run,
            "nodes": 1,
            "ntasks_per_node": 1,
            "signal_delay_s": self.signal_delay_s,
            "job_name": "sbx-run",
        }
        if self.partition:
            parameters["partition"] = self.partition
        if self.gpus_per_run:
            parameters["gpus_per_node"] = self.gpus_per_run
        if self.mem_gb:
            parameters["mem"] = f"{int(self.mem_gb * 1024)}M"
        if self.sbatch:
            parameters["additional_parameters"] = dict(self.sbatch)
        return parameters

    def submit(self, runs, commands):
        """Submits a job per run (one job array), except for runs whose job is still queued or running."""
        try:
            import submitit
        except ImportError:
            raise SystemExit("--launcher slurm needs submitit: pip install 'speechbrain_xfer[slurm]'") from None
        live = queue_states()
        fresh = []
        for run in runs:
            job_id = _record(run).get("job_id")
            if job_id is not None and live.get(job_id) in LIVE_STATES:
                self._jobs[run] = job_id
            else:
                fresh.append(run)
        if len(fresh) < len(runs):
            logger.info("%d runs already queued or running: waiting for their jobs", len(runs) - len(fresh))
        if not fresh:
            return
        executor = submitit.SlurmExecutor(folder=os.path.join(self.folder, "%j"), max_num_timeout=self.max_requeues)
        executor.update_parameters(**self.executor_parameters())
        stop_wait = max(5.0, self.signal_delay_s - 30.0)
        with executor.batch():
            jobs = []
            for run in fresh:
                os.makedirs(run.folder, exist_ok=True)
                log = os.path.join(run.folder, "log.txt")
                work = RecipeJob(commands[run], log, self.cpus_per_run, self.gpus_per_run, stop_wait)
                jobs.append(executor.submit(work))
        for run, job in zip(fresh, jobs, strict=True):
            self._jobs[run] = job.job_id
            with open(os.path.join(run.folder, RECORD), "w") as f:
                json.dump({"job_id": job.job_id, "submitit_folder": str(job.paths.folder)}, f)
        logger.info("%d runs submitted to SLURM (job array %s)", len(fresh), jobs[0].job_id.split("_")[0])

    def wait(self, progress=True):
        """Waits until every submitted job has ended; returns the runs that failed (no ``summary.json``)."""
        jobs, self._jobs = self._jobs, {}
        ended, leaving = {}, {}
        bar = tqdm(total=len(jobs), disable=not progress, desc="jobs", unit="run")
        try:
            while len(ended) < len(jobs):
                states = queue_states()
                counts = {"pending": 0, "running": 0}
                for run, job_id in jobs.items():
                    if run in ended:
                        continue
                    state = states.get(job_id, "GONE")
                    if state in LIVE_STATES:
                        leaving.pop(run, None)
                        counts["running" if state in ("RUNNING", "COMPLETING") else "pending"] += 1
                        continue
                    # No result file yet: give a job on its way back from a requeue a margin before calling it.
                    since = leaving.setdefault(run, time.monotonic())
                    outcome = job_outcome(run, job_id)
                    finished = state == "COMPLETED" and os.path.isfile(run.summary_path)
                    if finished or outcome is not None or time.monotonic() - since >= self.ended_after_s:
                        ended[run] = (state, outcome)
                        bar.update()
                    else:
                        counts["running"] += 1
                failed = sum(not os.path.isfile(r.summary_path) for r in ended)
                bar.set_postfix_str(f"pending {counts['pending']} running {counts['running']} failed {failed}")
                if len(ended) < len(jobs):
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            logger.warning("the jobs go on in SLURM; run the same command again to wait for them and report")
            raise
        finally:
            bar.close()
        return [run for run in sorted(ended, key=lambda r: r.sort_key) if _report_failure(run, jobs[run], *ended[run])]


def _record(run):
    """The run's ``slurm_job.json`` (its job id and submitit folder), or ``{}``."""
    path = os.path.join(run.folder, RECORD)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def submitit_file(run, job_id, suffix):
    """The path of submitit's ``<job id>_0_<suffix>`` for the run's job (its log, its result)."""
    return os.path.join(_record(run).get("submitit_folder", ""), f"{job_id}_0_{suffix}")


def job_outcome(run, job_id):
    """submitit's result of the job, ``("success", code)`` or ``("error", traceback)``; ``None`` while there is
    none (the job still runs, was requeued, or was killed before it could write one)."""
    path = submitit_file(run, job_id, "result.pkl")
    if not os.path.isfile(path):  # submitit moves the finished file into place: never read half-written
        return None
    from submitit.core.utils import pickle_load

    return pickle_load(path)


def _report_failure(run, job_id, state, outcome):
    """Whether ``run`` failed (no ``summary.json``); if so, logs why (the error the job raised, when it raised
    one) and where to look (the run's log, and submitit's log of the job when there is one)."""
    if os.path.isfile(run.summary_path):
        return False
    job_log = submitit_file(run, job_id, "log.err")
    error = ""
    if outcome is not None and outcome[0] == "error":
        error = ": " + str(outcome[1]).strip().splitlines()[-1]
    logger.error(
        "%s failed (SLURM job %s, %s%s); see %s%s",
        run.name,
        job_id,
        "no longer in the queue" if state == "GONE" else state,
        error,
        os.path.join(run.folder, "log.txt"),
        f" and {job_log}" if os.path.isfile(job_log) else "",
    )
    return True
