"""Run work in throw-away child processes, so that a crash loses one item.

Native code (espeak-ng here) can kill its process with a segfault or a
floating-point exception. :func:`run_isolated` runs each chunk of items in a
freshly forked child: a chunk whose child dies is retried one item at a
time, and an item that still kills its child is reported as a
:class:`Failure` while every other item completes. Each chunk starts from
the parent's state, so results do not depend on how chunks were scheduled.
"""

import collections
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import wait


@dataclass(frozen=True)
class Failure:
    """An item whose work raised or killed its process."""

    reason: str


def _describe_exit(exitcode):
    if exitcode is not None and exitcode < 0:
        try:
            return f"process killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"process killed by signal {-exitcode}"
    return f"process exited with code {exitcode}"


def _child(fn, items, conn):
    try:
        conn.send(("ok", fn(items)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


def run_isolated(fn, chunks, jobs=1, on_progress=None):
    """Runs ``fn(chunk)`` for every chunk, each in its own forked process.

    Arguments
    ---------
    fn : callable
        Takes a list of items and returns a list of per-item results of the
        same length. Must be picklable results; runs in the child.
    chunks : list of lists
        The items, grouped; a chunk is the unit of one child process.
    jobs : int
        How many children run at once.
    on_progress : callable, optional
        Called with the number of items just finished.

    Returns
    -------
    list
        Per-item results in the order of the flattened chunks, with a
        :class:`Failure` for each item that raised or crashed.

    Example
    -------
    >>> run_isolated(lambda xs: [x * 2 for x in xs], [[1, 2], [3]], jobs=2)
    [2, 4, 6]
    """
    ctx = multiprocessing.get_context("fork")
    pending = collections.deque()
    start = 0
    for chunk in chunks:
        pending.append((start, list(chunk)))
        start += len(chunk)
    results = [None] * start
    running = {}
    while pending or running:
        while pending and len(running) < jobs:
            first, items = pending.popleft()
            receiver, sender = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(fn, items, sender), daemon=True)
            process.start()
            sender.close()
            running[receiver] = (process, first, items)
        for receiver in wait(list(running)):
            process, first, items = running.pop(receiver)
            try:
                status, payload = receiver.recv()
            except EOFError:
                status, payload = "died", None
            receiver.close()
            process.join()
            if status == "ok" and len(payload) == len(items):
                results[first : first + len(items)] = payload
                if on_progress:
                    on_progress(len(items))
            elif len(items) > 1:
                # Find the culprit: retry every item of the chunk on its own.
                for offset, item in reversed(list(enumerate(items))):
                    pending.appendleft((first + offset, [item]))
            else:
                reason = payload if status == "error" else _describe_exit(process.exitcode)
                results[first] = Failure(reason)
                if on_progress:
                    on_progress(1)
    return results
