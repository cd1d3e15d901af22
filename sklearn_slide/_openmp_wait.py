"""The engine's OpenMP threads sleep, rather than spin, while they wait.

An epoch opens two parallel regions per batch (the samples, then the row
updates), so worker threads wait at a barrier hundreds of times a second.
GNU OpenMP's default makes them spin there first. On a machine where other
processes want the cores (a laptop, a CI runner, a notebook beside a test
run), the spinning threads take the CPU from the one doing the work: measured
on delicious, 4 epochs, 2 threads, load average 5.5 on 2 cores, spinning cost
2.5x the wall time and 2.6x the CPU time of passive waiting, and made 2
threads slower than 1 (benchmarks/NOTES.md, issue 12).

The OpenMP runtime reads OMP_WAIT_POLICY once, when it is loaded; the engine
links its own copy of the runtime, so setting the variable just while the
engine loads changes only the engine's threads (nothing, if something else in
the process loaded that same runtime before). A policy the user set is kept,
and the process environment is left as it was.
"""

import contextlib
import os

VARIABLE = "OMP_WAIT_POLICY"


@contextlib.contextmanager
def passive_wait_while_loading():
    """Within the block, OMP_WAIT_POLICY is PASSIVE unless the user set it."""
    if VARIABLE in os.environ:
        yield
        return
    os.environ[VARIABLE] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop(VARIABLE, None)
