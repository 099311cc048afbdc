"""A solver-neutral integer linear model and its back-ends: OR-Tools CP-SAT, HiGHS (highspy), CBC (PuLP).

Why neutral: the COSMA model is written once and handed to any back-end, so the back-ends can
be benchmarked on identical instances and a result always says which one produced it. Only open
solvers are used (no commercial solver anywhere; ``tests/test_cosma.py`` checks that).

Conditional constraints ("this row holds when these literals are true") go to CP-SAT as
``OnlyEnforceIf`` and to HiGHS and CBC as big-M rows whose M comes from the variables' bounds, so
no hand-tuned M can silently cut off solutions. No-overlap groups go to CP-SAT as interval
constraints and to the MILP back-ends as order binaries with big-M rows (``with_pairs``).

Every back-end runs in the caller's process. Earlier builds could not: OR-Tools 9.15 bundles a
``libhighs.so.1`` and highspy 1.15 shipped another with the same soname, so whichever loaded
first broke the other and PuLP solves ran in a spawned interpreter. With highspy 1.16 both load
and solve in one process in either import order (``tests/test_cosma_backends.py`` checks it).
"""
from __future__ import annotations

import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from accelsim.errors import AccelsimError

SOLVERS = ("cpsat", "highs", "cbc")

# Load-independent budgets. A ``time_limit_s`` handed to ``solve`` is a budget in *nominal
# seconds*: CP-SAT gets ``max_deterministic_time = time_limit_s * CPSAT_DET_PER_CPU_S`` (its own
# work count, the same on a loaded machine as on a quiet one) with a fixed seed and worker count,
# so with one worker the same model gives the same answer under any load (with several workers
# CP-SAT's parallel portfolio is not deterministic). CP-SAT's deterministic time is meant to be
# about a second of work on a reference machine; measured here (``benchmarks/cosma_det_ratio.py``,
# ``results/cosma_det_ratio.md``: one worker, OR-Tools 9.15, 2026-12-02 at load average 1.2-1.6 on
# 2 cores, CPU time = wall time) one CPU second gave 0.24 deterministic s (ViT-B/16 unfused, full
# model), 0.42 (DeepLabV3 unfused, full model), 0.87 (ResNet-50 unfused + weights, relaxation) and
# 0.95 (FC-DenseNet unfused + weights, relaxation). The constant is their geometric mean (0.54),
# rounded: one nominal second is 0.5 to 2 CPU seconds here depending on the model (about one on
# the relaxations, which close most instances; 2 on large full models with addresses).
CPSAT_DET_PER_CPU_S = 0.5
# The wall clock stays only as a safety net: a solve stops after ``WALL_CAP_FACTOR`` times its
# nominal budget (plus ``WALL_CAP_EXTRA_S``) of wall time whatever its deterministic count, and
# says so (``SolveResult.wall_capped``); a result stopped that way may depend on the load.
WALL_CAP_FACTOR = 4.0
WALL_CAP_EXTRA_S = 30.0  # model building and the bounds are not in the deterministic count (Python work)


def wall_cap_s(time_limit_s: float) -> float:
    """The safety-net wall-clock limit of a solve with a nominal budget of ``time_limit_s``."""
    return WALL_CAP_FACTOR * float(time_limit_s) + WALL_CAP_EXTRA_S

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
    # groups of (start variable, fixed length, presence binary): present intervals must not overlap
    no_overlaps: list[list[tuple[int, int, int]]] = field(default_factory=list)

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

    def no_overlap(self, items: list[tuple[int, int, int]]) -> None:
        """Intervals ``[start, start + length)`` whose presence binary is 1 may not share a point."""
        self.no_overlaps.append([(int(v), int(n), int(p)) for v, n, p in items])

    def with_pairs(self) -> LinearModel:
        """A copy with every no-overlap group replaced by order binaries and big-M rows (for the
        MILP back-ends, which have no interval constraints). New variables come after the old ones."""
        out = LinearModel(list(self.names), list(self.lb), list(self.ub), list(self.rows), dict(self.objective),
                          self.objective_constant)
        for g, group in enumerate(self.no_overlaps):
            for (va, na, pa), (vb, nb, pbv) in combinations(group, 2):
                y = out.var(f"ord[{g},{va},{vb}]")
                out.add({va: 1, vb: -1}, "<=", -na, ((pa, True), (pbv, True), (y, True)))
                out.add({vb: 1, va: -1}, "<=", -nb, ((pa, True), (pbv, True), (y, False)))
        return out

    def extend_hint(self, expanded: LinearModel, values: list[int]) -> list[int]:
        """``values`` of this model plus the order binaries ``with_pairs`` added (1 when a lies below b)."""
        out = list(values)
        for group in self.no_overlaps:
            for (va, _, _), (vb, _, _) in combinations(group, 2):
                out.append(int(values[va] < values[vb]))
        return out[:expanded.n_vars]

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
        for g, group in enumerate(self.no_overlaps):
            present = sorted((values[v], n, v) for v, n, p in group if values[p])
            for (s0, n0, v0), (s1, _, v1) in zip(present, present[1:]):
                if s0 + n0 > s1:
                    bad.append(f"no-overlap {g}: {self.names[v0]}={s0}+{n0} overlaps {self.names[v1]}={s1}")
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
    budget_used_s: float | None = None  # nominal seconds used (CP-SAT: deterministic time / CPSAT_DET_PER_CPU_S;
    # the MILP back-ends have no deterministic limit: their wall seconds, so their budgets depend on the load)
    wall_capped: bool = False  # stopped by the wall-clock safety net, not by its deterministic budget

    def __post_init__(self) -> None:
        if self.budget_used_s is None:
            self.budget_used_s = self.solve_s

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


def solve(model: LinearModel, solver: str = "cpsat", time_limit_s: float = 60.0,
          hint: list[int] | dict[int, int] | None = None,
          threads: int = 2, seed: int = 0, wall_limit_s: float | None = None) -> SolveResult:
    """Minimise ``model`` with the named back-end, starting from ``hint`` when given.

    ``time_limit_s`` is a nominal budget (deterministic on CP-SAT, see ``CPSAT_DET_PER_CPU_S``);
    ``wall_limit_s`` (default ``wall_cap_s(time_limit_s)``) is the wall-clock safety net."""
    if solver not in SOLVERS:
        raise AccelsimError(f"unknown solver {solver!r}", field="solver", allowed=SOLVERS)
    if time_limit_s is None or not time_limit_s > 0:
        raise AccelsimError(f"must be a positive number of seconds, got {time_limit_s!r}", field="time_limit")
    cap = wall_cap_s(time_limit_s) if wall_limit_s is None else max(0.05, float(wall_limit_s))
    if solver == "cpsat":
        return _solve_cpsat(model, time_limit_s, hint, threads, seed, cap)
    if isinstance(hint, dict):
        hint = None  # the MILP back-ends take complete starts only
    flat = model.with_pairs() if model.no_overlaps else model
    if hint is not None and model.no_overlaps:
        hint = model.extend_hint(flat, hint)
    if solver == "highs":
        return _solve_highs(flat, time_limit_s, hint, threads, seed)
    return _solve_pulp(flat, solver, time_limit_s, hint, threads)


# --- OR-Tools CP-SAT ------------------------------------------------------------------------------

def _solve_cpsat(model: LinearModel, time_limit_s: float, hint: list[int] | None, threads: int,
                 seed: int, wall_limit_s: float) -> SolveResult:
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
    for group in model.no_overlaps:
        m.AddNoOverlap([m.NewOptionalFixedSizeIntervalVar(xs[v], n, xs[p], f"iv{v}") for v, n, p in group])
    m.Minimize(sum(c * xs[v] for v, c in model.objective.items()) + model.objective_constant)
    if hint is not None:  # a full assignment, or {variable: value} for some of them (CP-SAT completes it)
        for v, value in (hint.items() if isinstance(hint, dict) else enumerate(hint)):
            m.AddHint(xs[v], int(value))
    solver = cp_model.CpSolver()
    det_limit = float(time_limit_s) * CPSAT_DET_PER_CPU_S
    solver.parameters.max_deterministic_time = det_limit
    solver.parameters.max_time_in_seconds = wall_limit_s
    solver.parameters.num_workers = max(1, int(threads))
    solver.parameters.random_seed = int(seed)
    start = time.perf_counter()
    code = solver.Solve(m)
    elapsed = time.perf_counter() - start
    det = float(solver.response_proto.deterministic_time)
    used = det / CPSAT_DET_PER_CPU_S
    capped = code not in (cp_model.OPTIMAL, cp_model.INFEASIBLE) and det < 0.99 * det_limit \
        and elapsed >= 0.99 * wall_limit_s
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible",
              cp_model.MODEL_INVALID: "invalid"}.get(code, "unknown")
    if status == "invalid":
        raise RuntimeError(f"CP-SAT rejected the model: {m.Validate()}")
    if status in ("optimal", "feasible"):
        values = [int(solver.Value(x)) for x in xs]
        obj = float(solver.ObjectiveValue())
        bound = obj if status == "optimal" else float(solver.BestObjectiveBound())
        return SolveResult("cpsat", status, values, obj, bound, elapsed, used, capped)
    bound = None if status == "infeasible" else float(solver.BestObjectiveBound())
    return SolveResult("cpsat", status, None, None, bound, elapsed, used, capped)


# --- HiGHS through highspy, in this process -------------------------------------------------------

def _enforced_rows(model: LinearModel):
    """Each row as ``(coefs, lower, upper)`` with enforcement literals folded in as big-M terms."""
    for coefs, sense, rhs, enforce in model.rows:
        over, under = _big_m_row(model, coefs, sense, rhs)
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


def _new_highs(threads: int = 1):
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
    """See ``_new_highs``. The first one of a process prints a banner on file descriptor 1
    before any option can be set (highspy 1.16); library code never prints, so fd 1 points at
    /dev/null while it is made."""
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


def _solve_highs(model: LinearModel, time_limit_s: float, hint: list[int] | None, threads: int,
                 seed: int) -> SolveResult:
    import highspy
    import numpy as np

    h = _new_highs(threads)
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


# --- PuLP with CBC (PuLP runs the CBC binary as its own process) --------------------------------------

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
