"""Solve a solver-neutral integer linear model (``milp_model``) with OR-Tools CP-SAT (here), HiGHS
(``milp_highs``) or CBC (``milp_cbc``).

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
and solve in one process in either import order (``tests/test_cosma_bounds.py`` checks both orders).
"""
from __future__ import annotations

import time

from accelsim.errors import AccelsimError
from mappers.milp_model import LinearModel, Literal, SolveResult, relative_gap

__all__ = [
    "CPSAT_DET_PER_CPU_S",
    "SOLVERS",
    "LinearModel",
    "Literal",
    "SolveResult",
    "relative_gap",
    "solve",
    "wall_cap_s",
]

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
        from mappers.milp_highs import solve_highs

        return solve_highs(flat, time_limit_s, hint, threads, seed)
    from mappers.milp_cbc import solve_cbc

    return solve_cbc(flat, solver, time_limit_s, hint, threads)


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
