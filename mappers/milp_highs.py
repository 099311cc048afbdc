"""HiGHS through highspy, in this process: the MILP back-end ``mappers.milp.solve`` hands models to.

Conditional rows become big-M rows (``LinearModel.big_m``); no-overlap groups arrive already
expanded into order binaries (``LinearModel.with_pairs``). ``new_highs`` is also what the COSMA
bounds use for their small LPs and covering problems.
"""
from __future__ import annotations

import math
import time

from mappers.milp_model import LinearModel, SolveResult


def _enforced_rows(model: LinearModel):
    """Each row as ``(coefs, lower, upper)`` with enforcement literals folded in as big-M terms."""
    for coefs, sense, rhs, enforce in model.rows:
        over, under = model.big_m(coefs, sense, rhs)
        if sense in ("<=", "=="):
            row, up = dict(coefs), rhs
            for v, want in enforce:  # expr <= rhs + over * slack, slack = sum(1 - x | want 1) + sum(x | want 0)
                row[v] = row.get(v, 0) + (over if want else -over)
                up += over if want else 0
            yield row, -math.inf, up
        if sense in (">=", "=="):
            row, lo = dict(coefs), rhs
            for v, want in enforce:  # expr >= rhs - under * slack
                row[v] = row.get(v, 0) + (-under if want else under)
                lo -= under if want else 0
            yield row, lo, math.inf


_highs_threads: list[int] = []  # the thread count HiGHS's process-wide scheduler was started with


def new_highs(threads: int = 1):
    """A silent ``highspy.Highs`` running on ``threads`` threads.

    HiGHS starts one process-wide thread scheduler on the first run and then refuses (``run``
    returns an error) any instance asking for another count, so it is reset when the count
    changes. The first instance of a process prints a banner on file descriptor 1 before any
    option can be set (highspy 1.16); library code never prints, so fd 1 points at /dev/null while
    it is made."""
    import highspy

    threads = max(1, int(threads))
    if _highs_threads and _highs_threads[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
        _highs_threads.clear()
    if not _highs_threads:
        _highs_threads.append(threads)
    return _silent_highs(threads)


def _silent_highs(threads: int):
    """A ``highspy.Highs`` made with file descriptor 1 on /dev/null (the banner; see ``new_highs``)."""
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    return h


def solve_highs(model: LinearModel, time_limit_s: float, hint: list[int] | None, threads: int,
                 seed: int) -> SolveResult:
    import highspy
    import numpy as np

    h = new_highs(threads)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", int(seed))
    n = model.n_vars
    inf = highspy.kHighsInf
    h.addVars(n, np.array(model.lb, dtype=float), np.array(model.ub, dtype=float))
    idx = np.arange(n, dtype=np.int32)
    h.changeColsIntegrality(n, idx, np.array([highspy.HighsVarType.kInteger] * n))
    cost = np.zeros(n)
    for v, c in model.objective.items():
        cost[v] = c
    h.changeColsCost(n, idx, cost)
    lower, upper, starts, index, value = [], [], [], [], []
    for row, lo, up in _enforced_rows(model):
        row = {v: c for v, c in row.items() if c}
        if not row:
            if lo > 0 or up < 0:
                return SolveResult("highs", "infeasible", None, None, None, 0.0)
            continue
        starts.append(len(index))
        index += list(row)
        value += list(row.values())
        lower.append(-inf if lo == -math.inf else float(lo))
        upper.append(inf if up == math.inf else float(up))
    if lower:
        h.addRows(len(lower), np.array(lower), np.array(upper), len(index), np.array(starts, dtype=np.int32),
                  np.array(index, dtype=np.int32), np.array(value, dtype=float))
    # Presolve off: HiGHS 1.16's MIP presolve returned wrong optima on these models (the cumulative
    # relaxation of DeepLabV3 + weights at M_R: "optimal" 803328 B where CP-SAT, CBC and HiGHS
    # without presolve prove 802816 B; of R(2+1)D-18 + weights from a MIP start: the start's
    # 77070336 B called optimal where 51380224 B exists). Both are right with presolve off.
    h.setOptionValue("presolve", "off")
    if hint is not None:
        sol = highspy.HighsSolution()
        sol.col_value = [float(x) for x in hint]
        sol.value_valid = True
        h.setSolution(sol)
    start = time.perf_counter()
    h.run()
    elapsed = time.perf_counter() - start
    info, model_status = h.getInfo(), h.getModelStatus()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if model_status == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif model_status == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    else:
        status = "feasible" if has_solution else "unknown"
    bound = float(info.mip_dual_bound) if status != "infeasible" else None
    if bound is not None and not math.isfinite(bound):
        bound = None
    if bound is not None:
        bound += model.objective_constant
    if status in ("optimal", "feasible"):
        values = [int(round(x)) for x in h.getSolution().col_value]
        obj = float(model.objective_value(values))
        return SolveResult("highs", status, values, obj, obj if status == "optimal" else bound, elapsed)
    return SolveResult("highs", status, None, None, bound, elapsed)
