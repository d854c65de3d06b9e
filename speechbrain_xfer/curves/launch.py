"""Recipe runs in child processes that start with the libraries already imported.

A recipe run imports torch, SpeechBrain and this package before it trains:
about 4-5 s of every run on a 2-core machine, and a learning-curve grid
runs dozens of short ones. :func:`run_recipe` forks each run from a server
process that imported them once (multiprocessing's ``forkserver``); each
run is still a process of its own, with its own log, thread count and exit
code, as with ``python train.py ...``. Where there is no forkserver
(Windows), it runs a plain subprocess.
"""

import multiprocessing
import os
import runpy
import subprocess
import sys

# Imported once by the server; a module that fails to import there is just imported by each run instead.
PRELOAD = ["torch", "speechbrain", "speechbrain_xfer.experiment", "speechbrain_xfer.brains", "speechbrain_xfer.lobes"]

_context = None


def _forkserver():
    global _context
    if _context is None and "forkserver" in multiprocessing.get_all_start_methods():
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def run_recipe(command, log_path, threads=None, append=False):
    """Runs ``command`` (``[python, train.py, args...]``) with its output in ``log_path``; returns its exit code.

    Arguments
    ---------
    command : list of str
        ``sys.executable``, the recipe's ``train.py``, then its arguments.
    log_path : str
        File for the run's standard output and error.
    threads : int, optional
        Torch threads of the run (``OMP_NUM_THREADS`` too); None keeps the default.
    append : bool
        Appends to ``log_path`` instead of replacing it.

    Returns
    -------
    int
        The run's exit code: 0 when it finished.
    """
    context = _forkserver()
    if context is None or command[0] != sys.executable:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        with open(log_path, "a" if append else "w") as log:
            return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    process = context.Process(target=_run_script, args=(command[1], command[2:], log_path, threads, append))
    process.start()
    try:
        process.join()
    except BaseException:
        process.terminate()  # as subprocess.call does: no run left behind on Ctrl-C
        process.join()
        raise
    return process.exitcode


def _run_script(script, args, log_path, threads, append):
    """In the forked child: what ``python script args...`` would do, output to ``log_path``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    log = os.open(log_path, flags, 0o644)
    for fd in (1, 2):
        os.dup2(log, fd)
    os.close(log)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    if threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
