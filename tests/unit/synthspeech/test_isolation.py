"""Crash isolation with real crashes: a segfault and a SIGFPE in the child."""

import ctypes
import os
import signal

from speechbrain_xfer.synthspeech.isolation import Failure, run_isolated


def _work(items):
    out = []
    for x in items:
        if x == 4:
            ctypes.string_at(0)  # a real segfault, as a crashing voice does
        if x == 7:
            os.kill(os.getpid(), signal.SIGFPE)
        if x == 9:
            raise ValueError("nine is not allowed")
        out.append(x * 10)
    return out


def test_a_crash_loses_only_its_own_item():
    done = []
    results = run_isolated(_work, [[1, 2, 3], [4, 5, 6], [7, 8, 9, 10]], jobs=2, on_progress=done.append)
    assert results[:3] == [10, 20, 30]
    assert results[3] == Failure("process killed by SIGSEGV")
    assert results[4:6] == [50, 60]
    assert results[6] == Failure("process killed by SIGFPE")
    assert results[7] == 80
    assert results[8] == Failure("ValueError: nine is not allowed")
    assert results[9] == 100
    assert sum(done) == 10
