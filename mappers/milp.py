"""A solver-neutral integer linear model and its back-ends: OR-Tools CP-SAT, and PuLP with HiGHS or CBC.

Why neutral: the COSMA model is written once and handed to any back-end, so the back-ends can
be benchmarked on identical instances and a result always says which one produced it. Only open
solvers are used (no commercial solver anywhere; ``tests/test_cosma.py`` checks that).

Conditional constraints ("this row holds when these literals are true") go to CP-SAT as
``OnlyEnforceIf`` and to PuLP as big-M rows whose M comes from the variables' bounds, so no
hand-tuned M can silently cut off solutions.
"""
from __future__ import annotations

import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from accelsim.errors import AccelsimError

SOLVERS = ("cpsat", "highs", "cbc")

Literal = tuple[int, bool]  # (binary variable index, value it must take to enforce the row)


@dataclass
class LinearModel:
    """Variables with integer bounds, rows ``sum(coef * var) (<=|>=|==) rhs`` and a minimised objective."""

    names: list[str] = field(default_factory=list)
    lb: list[int] = field(default_factory=list)
    ub: list[int] = field(default_factory=list)
    rows: list[tuple[dict[int, int], str, int, tuple[Literal, ...]]] = field(default_factory=list)
    objective: dict[int, int] = field(default_factory=dict)
    objective_constant: int = 0

    def var(self, name: str, lb: int = 0, ub: int = 1) -> int:
        if lb > ub:
            raise ValueError(f"variable {name}: empty domain [{lb}, {ub}]")
        self.names.append(name)
        self.lb.append(int(lb))
        self.ub.append(int(ub))
        return len(self.names) - 1

    def add(self, coefs: dict[int, int], sense: str, rhs: int, enforce: tuple[Literal, ...] = ()) -> None:
        if sense not in ("<=", ">=", "=="):
            raise ValueError(sense)
        coefs = {v: c for v, c in coefs.items() if c}
        self.rows.append((coefs, sense, int(rhs), tuple(enforce)))

    @property
    def n_vars(self) -> int:
        return len(self.names)

    def is_binary(self, v: int) -> bool:
        return self.lb[v] == 0 and self.ub[v] == 1

    def value(self, coefs: dict[int, int], values: list[int]) -> int:
        return sum(c * values[v] for v, c in coefs.items())

    def violations(self, values: list[int]) -> list[str]:
        """Rows a full assignment breaks (used to check warm starts and decoded solutions)."""
        bad = []
        for v in range(self.n_vars):
            if not self.lb[v] <= values[v] <= self.ub[v]:
                bad.append(f"{self.names[v]}={values[v]} outside [{self.lb[v]}, {self.ub[v]}]")
        for i, (coefs, sense, rhs, enforce) in enumerate(self.rows):
            if any(values[v] != int(want) for v, want in enforce):
                continue
            lhs = self.value(coefs, values)
            ok = lhs <= rhs if sense == "<=" else lhs >= rhs if sense == ">=" else lhs == rhs
            if not ok:
                terms = " + ".join(f"{c}*{self.names[v]}" for v, c in coefs.items())
                bad.append(f"row {i}: {terms} {sense} {rhs} (lhs {lhs})")
        return bad

    def objective_value(self, values: list[int]) -> int:
        return self.value(self.objective, values) + self.objective_constant


@dataclass
class SolveResult:
    """What a back-end found: an assignment (or None), its status and the proven bound."""

    solver: str
    status: str  # optimal | feasible | infeasible | unknown
    values: list[int] | None
    objective: float | None
    best_bound: float | None
    solve_s: float

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.best_bound)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(objective - bound) / objective, 0 when both are 0; None without an incumbent."""
    if objective is None:
        return None
    if bound is None:
        return 1.0 if objective > 0 else 0.0
    bound = min(bound, objective)
    if objective <= 0:
        return 0.0
    return max(0.0, (objective - bound) / objective)


def solve(model: LinearModel, solver: str = "cpsat", time_limit_s: float = 60.0, hint: list[int] | None = None,
          threads: int = 2, seed: int = 0) -> SolveResult:
    """Minimise ``model`` with the named back-end, starting from ``hint`` when given."""
    if solver not in SOLVERS:
        raise AccelsimError(f"unknown solver {solver!r}", field="solver", allowed=SOLVERS)
    if time_limit_s is None or not time_limit_s > 0:
        raise AccelsimError(f"must be a positive number of seconds, got {time_limit_s!r}", field="time_limit")
    if solver == "cpsat":
        return _solve_cpsat(model, time_limit_s, hint, threads, seed)
    return _in_fresh_process(_solve_pulp, model, solver, time_limit_s, hint, threads)


def _in_fresh_process(fn, *args):
    """Run ``fn`` in a spawned interpreter.

    Why: OR-Tools 9.15 bundles its own ``libhighs.so.1`` and highspy 1.15 ships another with the
    same soname; whichever a process loads first is reused for the other, which then fails with
    undefined symbols. Importing PuLP loads highspy, so both PuLP back-ends (HiGHS and CBC) run
    in a process that never imports OR-Tools, and the caller's process never imports PuLP.
    """
    import os
    import pickle
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    payload = pickle.dumps((fn.__module__, fn.__name__, args))
    # The result travels through a file of its own: solvers print banners and logs on stdout
    # (highspy >= 1.16 does), which must never be able to corrupt it.
    with tempfile.TemporaryDirectory(prefix="accelsim-solver-") as tmp:
        result_path = os.path.join(tmp, "result.pickle")
        done = subprocess.run([sys.executable, "-c", "from mappers.milp import _child_main; _child_main()",
                               result_path], input=payload, capture_output=True, env=env, check=False)
        if done.returncode != 0 or not os.path.exists(result_path):
            raise RuntimeError(f"solver process failed (exit {done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-2000:]}")
        with open(result_path, "rb") as fh:
            return pickle.load(fh)


def _child_main() -> None:
    """Entry point of the spawned solver process: unpickle a call from stdin, pickle its result to
    the file named by argv[1] (never stdout, which the solver may write to)."""
    import importlib
    import pickle
    import sys

    module, name, args = pickle.loads(sys.stdin.buffer.read())
    result = getattr(importlib.import_module(module), name)(*args)
    with open(sys.argv[1], "wb") as fh:
        pickle.dump(result, fh)


# --- OR-Tools CP-SAT ------------------------------------------------------------------------------

def _solve_cpsat(model: LinearModel, time_limit_s: float, hint: list[int] | None, threads: int,
                 seed: int) -> SolveResult:
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    xs = [m.NewBoolVar(n) if model.is_binary(v) else m.NewIntVar(model.lb[v], model.ub[v], n)
          for v, n in enumerate(model.names)]
    for coefs, sense, rhs, enforce in model.rows:
        expr = sum(c * xs[v] for v, c in coefs.items())
        if not coefs:  # a constant row: either always true or it forbids its enforcement literals
            ok = 0 <= rhs if sense == "<=" else 0 >= rhs if sense == ">=" else rhs == 0
            if not ok:
                m.AddBoolOr([xs[v].Not() if want else xs[v] for v, want in enforce])
            continue
        ct = m.Add(expr <= rhs) if sense == "<=" else m.Add(expr >= rhs) if sense == ">=" else m.Add(expr == rhs)
        if enforce:
            ct.OnlyEnforceIf([xs[v] if want else xs[v].Not() for v, want in enforce])
    m.Minimize(sum(c * xs[v] for v, c in model.objective.items()) + model.objective_constant)
    if hint is not None:
        for v, x in enumerate(xs):
            m.AddHint(x, int(hint[v]))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = max(1, int(threads))
    solver.parameters.random_seed = seed
    start = time.perf_counter()
    code = solver.Solve(m)
    elapsed = time.perf_counter() - start
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible",
              cp_model.MODEL_INVALID: "invalid"}.get(code, "unknown")
    if status == "invalid":
        raise RuntimeError(f"CP-SAT rejected the model: {m.Validate()}")
    if status in ("optimal", "feasible"):
        values = [int(solver.Value(x)) for x in xs]
        obj = float(solver.ObjectiveValue())
        bound = obj if status == "optimal" else float(solver.BestObjectiveBound())
        return SolveResult("cpsat", status, values, obj, bound, elapsed)
    bound = None if status == "infeasible" else float(solver.BestObjectiveBound())
    return SolveResult("cpsat", status, None, None, bound, elapsed)


# --- PuLP: HiGHS (through highspy) and CBC ------------------------------------------------------------

def _big_m_row(model: LinearModel, coefs: dict[int, int], sense: str, rhs: int):
    """Largest amount by which ``coefs . x`` can exceed (or fall short of) ``rhs`` within the bounds."""
    hi = sum(c * (model.ub[v] if c > 0 else model.lb[v]) for v, c in coefs.items())
    lo = sum(c * (model.lb[v] if c > 0 else model.ub[v]) for v, c in coefs.items())
    return max(0, hi - rhs), max(0, rhs - lo)


def _build_pulp(model: LinearModel):
    import pulp

    prob = pulp.LpProblem("model", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{v}", lowBound=model.lb[v], upBound=model.ub[v], cat="Integer")
          for v in range(model.n_vars)]
    for i, (coefs, sense, rhs, enforce) in enumerate(model.rows):
        expr = pulp.lpSum(c * xs[v] for v, c in coefs.items())
        slack = pulp.lpSum((1 - xs[v]) if want else xs[v] for v, want in enforce)
        over, under = _big_m_row(model, coefs, sense, rhs)
        if sense in ("<=", "=="):
            prob += (expr <= rhs + over * slack if enforce else expr <= rhs), f"r{i}u"
        if sense in (">=", "=="):
            prob += (expr >= rhs - under * slack if enforce else expr >= rhs), f"r{i}l"
    # the constant stays out: PuLP's HiGHS back-end drops it and CBC's log may or may not include it,
    # so bounds read back are shifted by it explicitly in _solve_pulp
    prob += pulp.lpSum(c * xs[v] for v, c in model.objective.items())
    return prob, xs


def _solve_pulp(model: LinearModel, solver: str, time_limit_s: float, hint: list[int] | None,
                threads: int) -> SolveResult:
    import pulp

    prob, xs = _build_pulp(model)
    if hint is not None:
        for x, h in zip(xs, hint):
            x.setInitialValue(int(h))
    start = time.perf_counter()
    if solver == "highs":
        backend = _HighsWithStart(msg=False, timeLimit=float(time_limit_s), threads=threads,
                                  start=None if hint is None else [float(h) for h in hint], xs=xs)
        prob.solve(backend)
        info = prob.solverModel.getInfo()
        model_status = prob.solverModel.getModelStatus()
        import highspy

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
        elapsed = time.perf_counter() - start
    else:
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


def _highs_class():
    import pulp

    class HighsWithStart(pulp.HiGHS):
        """PuLP's HiGHS back-end, plus a MIP start set right before the run."""

        def __init__(self, *args, start=None, xs=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._start = start
            self._xs = xs

        def callSolver(self, lp):
            if self._start is not None:
                import highspy

                sol = highspy.HighsSolution()
                order = sorted(self._xs, key=lambda v: v.index)
                values = {id(x): s for x, s in zip(self._xs, self._start)}
                sol.col_value = [values[id(x)] for x in order]
                sol.value_valid = True
                lp.solverModel.setSolution(sol)
            lp.solverModel.run()

    return HighsWithStart


def _HighsWithStart(**kwargs):  # noqa: N802 - factory so pulp is imported lazily
    return _highs_class()(**kwargs)
