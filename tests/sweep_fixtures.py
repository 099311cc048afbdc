"""Evaluators for the sweep tests, importable by worker processes as ``tests.sweep_fixtures:<name>``.

``analytic`` is a closed-form stand-in with the systolic evaluator's shape (so the executor and
store tests do not depend on an engine's speed or details); ``flaky`` raises for one parameter
value and kills its worker process for another.
"""
from __future__ import annotations

import math
import os

from accelsim.errors import InfeasibleError
from accelsim.ir import GemmShape


def _gemms(workload):
    if isinstance(workload, GemmShape):
        return [workload]
    return [e.as_gemm() for e in workload.einsums]


def analytic(hardware, workload, options):
    """Folds x (fill + stream) cycles of an output-stationary array; SRAM bytes from the tile counts."""
    rows, cols = hardware.array.rows, hardware.array.cols
    cycles = 0
    macs = 0
    for g in _gemms(workload):
        folds = math.ceil(g.m / rows) * math.ceil(g.n / cols) * g.batch
        cycles += folds * (g.k + rows + cols - 2)
        macs += g.macs
    scale = options.get("scale", 1)
    return {"total_cycles": cycles * scale, "macs": macs,
            "overall_utilization": macs / (cycles * rows * cols),
            "sram_reads": {"ifmap": macs // cols, "filter": macs // rows}}


def flaky(hardware, workload, options):
    rows = hardware.array.rows
    if rows == 24:
        raise RuntimeError("rows=24 is cursed")
    if rows == 40:
        raise InfeasibleError("rows=40 does not fit")
    if rows == 56 and options.get("kill", False):
        os._exit(3)  # a worker that dies without a word
    return analytic(hardware, workload, options)


def slow(hardware, workload, options):
    """``analytic`` after a pause of ``$ACCELSIM_TEST_SLEEP_S`` seconds (none when unset), so a
    test can interrupt a sweep part-way. Environment, not an option, so the pause is not part of
    the points' keys and a fast re-run resumes the slow one. With ``$ACCELSIM_TEST_DONE_DIR`` set,
    a file named after the array rows is created there once the point's result exists, so a test
    can count the points that had finished when it interrupted the sweep."""
    import time

    time.sleep(float(os.environ.get("ACCELSIM_TEST_SLEEP_S", "0")))
    result = analytic(hardware, workload, options)
    done_dir = os.environ.get("ACCELSIM_TEST_DONE_DIR")
    if done_dir:
        open(os.path.join(done_dir, str(hardware.array.rows)), "w").close()
    return result


def broken(hardware, workload, options):
    raise ImportError("a setup problem that fails every point")
