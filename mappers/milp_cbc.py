"""CBC through PuLP (PuLP writes the model and runs the CBC binary as its own process).

Conditional rows become big-M rows (``LinearModel.big_m``); no-overlap groups arrive already
expanded into order binaries (``LinearModel.with_pairs``). The bound is read from CBC's log,
which PuLP does not expose.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from mappers.milp_model import LinearModel, SolveResult


def _build_pulp(model: LinearModel):
    import pulp

    prob = pulp.LpProblem("model", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{v}", lowBound=model.lb[v], upBound=model.ub[v], cat="Integer")
          for v in range(model.n_vars)]
    for i, (coefs, sense, rhs, enforce) in enumerate(model.rows):
        expr = pulp.lpSum(c * xs[v] for v, c in coefs.items())
        slack = pulp.lpSum((1 - xs[v]) if want else xs[v] for v, want in enforce)
        over, under = model.big_m(coefs, sense, rhs)
        if sense in ("<=", "=="):
            prob += (expr <= rhs + over * slack if enforce else expr <= rhs), f"r{i}u"
        if sense in (">=", "=="):
            prob += (expr >= rhs - under * slack if enforce else expr >= rhs), f"r{i}l"
    # the constant stays out: PuLP's HiGHS back-end drops it and CBC's log may or may not include it,
    # so bounds read back are shifted by it explicitly in solve_cbc
    prob += pulp.lpSum(c * xs[v] for v, c in model.objective.items())
    return prob, xs


def solve_cbc(model: LinearModel, solver: str, time_limit_s: float, hint: list[int] | None,
                threads: int) -> SolveResult:
    """CBC through PuLP (PuLP writes the model and runs the CBC binary, reading its log for the bound)."""
    import pulp

    prob, xs = _build_pulp(model)
    if hint is not None:
        for x, h in zip(xs, hint):
            x.setInitialValue(int(h))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        backend = pulp.PULP_CBC_CMD(msg=False, timeLimit=float(time_limit_s), threads=threads,
                                    warmStart=hint is not None, logPath=str(log), keepFiles=False)
        prob.solve(backend)
        text = log.read_text() if log.exists() else ""
    elapsed = time.perf_counter() - start
    status, bound = _parse_cbc(text, pulp.LpStatus[prob.status])
    if bound is not None:
        bound += model.objective_constant
    if status in ("optimal", "feasible"):
        values = [int(round(x.value() or 0)) for x in xs]
        obj = float(model.objective_value(values))
        if status == "optimal":
            bound = obj
        return SolveResult(solver, status, values, obj, bound, elapsed)
    return SolveResult(solver, status, None, None, bound, elapsed)


def _parse_cbc(log: str, pulp_status: str) -> tuple[str, float | None]:
    """CBC's result line and lower bound, read from its log (PuLP does not expose the bound)."""
    result = re.search(r"Result - (.*)", log)
    text = result.group(1).lower() if result else ""
    lower = re.search(r"Lower bound:\s*([-0-9.eE+]+)", log)
    bound = float(lower.group(1)) if lower else None
    if "optimal" in text:
        return "optimal", bound
    if "infeasible" in text:
        return "infeasible", None
    if "stopped" in text:
        has = re.search(r"Objective value:\s*([-0-9.eE+]+)", log) and "no integer" not in log.lower()
        return ("feasible" if has and pulp_status in ("Optimal", "Not Solved") else "unknown"), bound
    return ("optimal" if pulp_status == "Optimal" else "unknown"), bound
