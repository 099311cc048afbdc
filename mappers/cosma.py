"""COSMA entry points: solve one scratchpad-mapping problem, with a proven lower bound on every result.

The model itself is in ``mappers/cosma_model.py`` (variables C/P/S/R/L and what they mean),
schedules and budgets in ``mappers/cosma_schedule.py``, divide and conquer in
``mappers/divide.py``, composable bounds in ``mappers/bounds.py``.

How a solve is posed (``solve_cosma``), and why in this order:

1. **Zero short-cut**: a warm start with no non-compulsory bytes is optimal (the objective is
   never negative). Then the **order-free bound** of ``mappers/bounds.py`` (valid for any order,
   so for a fixed one too; about a second on 400 operators): a warm start that meets it is
   optimal with no solve at all. Then the **order-branching bound** of ``mappers/order_bounds.py``
   (the same bound, its minimum over the orders of a few unordered operators that fill the
   scratchpad; DeepLabV3's ASPP branches) with a small share of the time, same test.
2. **Cumulative relaxation** (no addresses, capacity per step only) gets a share of the time.
   Every full solution is a relaxation solution, so its proven bound bounds the full problem;
   it is much smaller and its bound is much tighter than the full model's own in the same time
   (``results/cosma_formulations.md``). If the warm start already meets it, done.
3. **Address check** of the relaxation's order: the full model with that order fixed (allocation
   and replacement only). Meeting the relaxation's bound certifies optimality; otherwise it is
   one more incumbent.
4. **Full model** (order + addresses + replacement) with the rest of the time, warm-started
   from the best incumbent; addresses as per-step no-overlap interval constraints on CP-SAT,
   order binaries on the MILP back-ends.

The result is never worse than the warm start and reports ``best_bound`` = the larger of the
relaxation's and the full model's proven bounds, so its gap is real.

Budgets do not depend on the machine's load: ``time_limit_s`` is a nominal budget split over
the stages by what each solve *used* in deterministic time (``mappers/milp.py``,
``CPSAT_DET_PER_CPU_S``), the bounds of step 1 do a fixed amount of work, and the wall clock is
only a safety net (``milp.wall_cap_s`` for the whole call), reported as ``meta["wall_capped"]``
when hit. With one CP-SAT worker the same call gives the same plan and bound under any load.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.mapping import Mapping
from mappers import milp
from mappers.bounds import static_lower_bound
from mappers.order_bounds import order_branching_bound
from mappers.cosma_model import OVERLAP_FORMS, CosmaModel, op_windows  # noqa: F401 (re-exported)
from mappers.cosma_schedule import (  # noqa: F401 (re-exported)
    BUDGETS,
    DEFAULT_SOLVER,
    PeakResult,
    budgets,
    greedy_min_peak_order,
    min_peak_schedule,
)
from mappers.memory_problem import MemoryProblem
from mappers.plan import Plan, to_mapping

MODES = ("full", "fixed")
RELAXATION_SHARE = 0.5  # of the time limit; a design choice: the relaxation is what closes the large
# unfused instances (FC-DenseNet at M_R: proven in 14 CPU s, 27 s wall under load), the full model rarely does
CHECK_SHARE = 0.25


@dataclass
class CosmaResult:
    """A mapping with the solver's account of it."""

    plan: Plan
    mapping: Mapping
    non_compulsory_bytes: int
    status: str  # optimal | feasible (time limit hit) | baseline (solver found nothing better in time)
    best_bound: float | None
    gap: float | None
    solver: str
    solve_s: float
    mode: str
    capacity_bytes: int
    meta: dict = field(default_factory=dict)

    @property
    def schedule(self) -> list[str]:
        return self.mapping.schedule


def check_time_limit(time_limit_s: float) -> None:
    if time_limit_s is None or not (isinstance(time_limit_s, (int, float)) and math.isfinite(time_limit_s)
                                    and time_limit_s > 0):
        raise AccelsimError(f"must be a positive, finite number of seconds, got {time_limit_s!r}",
                            field="time_limit", allowed="> 0")


def proven_optimal(objective: float, bound: float | None) -> bool:
    """Integral bytes: an objective at the rounded-up bound cannot be improved."""
    return bound is not None and objective <= math.ceil(bound - 1e-6)


def make_result(problem: MemoryProblem, plan: Plan, capacity_bytes: int, status: str, bound: float | None,
                solver: str, start: float, mode: str, meta: dict, mapper: str = "cosma") -> CosmaResult:
    """Package a plan with its bound; the bytes are the plan's own count (replayed by callers)."""
    objective = plan.non_compulsory_bytes(problem)
    if bound is not None:
        meta["bound_unclamped_bytes"] = float(bound)  # what the bounds proved; checked against plans in tests
        bound = min(float(bound), float(objective))
    if status != "baseline" and proven_optimal(objective, bound):
        status = "optimal"
    gap = 0.0 if status == "optimal" else milp.relative_gap(objective, bound)
    total_s = time.perf_counter() - start
    mapping = to_mapping(problem, plan, capacity_bytes, {
        "mapper": mapper, "mode": mode, "solver": solver, "status": status, "best_bound_bytes": bound,
        "gap": gap, "solve_s": total_s, **{k: v for k, v in meta.items() if k in ("pieces", "note", "wall_capped")}})
    return CosmaResult(plan, mapping, objective, status, bound, gap, solver, total_s, mode, int(capacity_bytes),
                       meta)


def solve_cosma(problem: MemoryProblem, capacity_bytes: int, *, mode: str = "full", order: list[int] | None = None,
                solver: str = DEFAULT_SOLVER, time_limit_s: float = 60.0, warm_start: Plan | None = None,
                threads: int = 2, seed: int = 0, relaxation: bool = True, overlap: str | None = None,
                static_bound: bool = True) -> CosmaResult:
    """Solve the COSMA ILP; the result is never worse than ``warm_start`` and carries a proven bound.

    ``static_bound=False, relaxation=False, overlap="pairs"`` give the original single-model
    formulation (kept to measure what each stage gains: ``benchmarks/cosma_formulations.py``).
    """
    if mode not in MODES:
        raise AccelsimError(f"unknown mode {mode!r}", field="mode", allowed=MODES)
    if solver not in milp.SOLVERS:
        raise AccelsimError(f"unknown solver {solver!r}", field="solver", allowed=milp.SOLVERS)
    check_time_limit(time_limit_s)
    overlap = overlap or ("intervals" if solver == "cpsat" else "pairs")
    if overlap not in OVERLAP_FORMS:
        raise AccelsimError(f"unknown overlap form {overlap!r}", field="overlap", allowed=OVERLAP_FORMS)
    if mode == "fixed":
        order = list(range(problem.n_ops)) if order is None else list(order)
        problem.check_order(order)
    else:
        order = None
    problem.require_capacity(capacity_bytes)
    start = time.perf_counter()
    wall_deadline = start + milp.wall_cap_s(time_limit_s)  # the safety net only
    used = [0.0]  # nominal seconds the stages' solves used (deterministic on CP-SAT)
    base_obj = warm_start.non_compulsory_bytes(problem) if warm_start is not None else None
    meta: dict = {"warm_start_bytes": base_obj, "warm_start_rejected": None, "stages": []}
    if base_obj == 0 and (order is None or list(warm_start.order) == order):
        meta["note"] = "warm start already has zero non-compulsory bytes"
        return make_result(problem, warm_start, capacity_bytes, "optimal", 0.0, solver, start, mode, meta)
    incumbents: list[Plan] = [warm_start] if warm_start is not None else []
    lower = 0.0
    if static_bound:  # the order-free bound (mappers/bounds.py) holds for every schedule, a fixed one too
        static = static_lower_bound(problem, capacity_bytes)
        lower = float(static.bytes)
        meta["stages"].append({"stage": "static bound", "bound": static.bytes, "operators": len(static.per_op),
                               "s": round(time.perf_counter() - start, 3)})
        if base_obj is not None and proven_optimal(base_obj, lower):
            return make_result(problem, warm_start, capacity_bytes, "optimal", lower, solver, start, mode, meta)
        ob = order_branching_bound(problem, capacity_bytes, at_least=static.bytes,
                                   wall_limit_s=milp.wall_cap_s(time_limit_s))
        lower = max(lower, float(ob.bytes))
        meta["stages"].append({"stage": "order-branching bound", "bound": ob.bytes, "group": list(ob.group),
                               "orders": ob.orders_tried, "complete": ob.complete,
                               "s": round(time.perf_counter() - start, 3)})
        if ob.wall_capped:
            meta["wall_capped"] = True
        if base_obj is not None and proven_optimal(base_obj, lower):
            return make_result(problem, warm_start, capacity_bytes, "optimal", lower, solver, start, mode, meta)

    def left() -> float:
        return max(0.05, time_limit_s - used[0])

    def run(model, budget_s: float, hint):
        res = milp.solve(model.m, solver, budget_s, hint, threads, seed,
                         wall_limit_s=wall_deadline - time.perf_counter())
        used[0] += res.budget_used_s
        if res.wall_capped:
            meta["wall_capped"] = True
        return res

    if relaxation:
        rel = CosmaModel(problem, capacity_bytes, order, addresses=False)
        _floor_objective(rel, lower)
        hint = _try_encode(rel, warm_start, {}) if warm_start is not None else None  # the full model reports
        r = run(rel, max(0.05, RELAXATION_SHARE * time_limit_s), hint)
        meta["stages"].append({"stage": "relaxation", "status": r.status, "bound": r.best_bound,
                               "objective": r.objective, "s": round(r.solve_s, 3), "variables": rel.m.n_vars})
        if r.status == "infeasible":
            raise _infeasible(problem, capacity_bytes, order, "even without address fragmentation")
        lower = max(lower, r.best_bound or 0.0)
        if base_obj is not None and proven_optimal(base_obj, lower):
            return make_result(problem, warm_start, capacity_bytes, "optimal", lower, solver, start, mode, meta)
        if order is None and r.values is not None and (base_obj is None or r.objective < base_obj):
            rel_order = rel.decode_steps(r.values)[0]
            check = CosmaModel(problem, capacity_bytes, rel_order, overlap=overlap)
            _floor_objective(check, lower)
            c = run(check, min(left(), max(0.05, CHECK_SHARE * time_limit_s)), None)
            meta["stages"].append({"stage": "address check", "status": c.status, "objective": c.objective,
                                   "s": round(c.solve_s, 3)})
            if c.values is not None:
                incumbents.append(check.decode(c.values))
                if proven_optimal(c.objective, lower):
                    return make_result(problem, incumbents[-1], capacity_bytes, "optimal", lower, solver, start,
                                       mode, meta)
    best = min(incumbents, key=lambda p: p.non_compulsory_bytes(problem), default=None)
    model = CosmaModel(problem, capacity_bytes, order, overlap=overlap)
    _floor_objective(model, lower)
    hint = _try_encode(model, best, meta) if best is not None else None
    meta["build_s"] = round(time.perf_counter() - start, 3)
    res = run(model, left(), hint)
    meta.update({"variables": model.m.n_vars, "constraints": len(model.m.rows), "solver_status": res.status,
                 "solver_objective": res.objective})
    meta["stages"].append({"stage": "full", "status": res.status, "bound": res.best_bound,
                           "objective": res.objective, "s": round(res.solve_s, 3)})
    if res.status == "infeasible":
        raise _infeasible(problem, capacity_bytes, order, "the solver proved it")
    if res.best_bound is not None:
        lower = max(lower, res.best_bound)
    if res.values is not None:
        plan = model.decode(res.values)
        if plan.non_compulsory_bytes(problem) != round(res.objective):
            raise RuntimeError(f"decoded plan costs {plan.non_compulsory_bytes(problem)} B but the solver "
                               f"reports {res.objective} B")
        incumbents.append(plan)
    if not incumbents:
        raise InfeasibleError(f"the {solver} solver found no mapping within {time_limit_s} s "
                              "(give more time or a warm start)", field="time_limit")
    plan = min(incumbents, key=lambda p: p.non_compulsory_bytes(problem))
    status = res.status if res.values is not None and plan is incumbents[-1] else \
        "baseline" if plan is warm_start else "feasible"
    if status == "baseline" and proven_optimal(base_obj, lower):
        status = "optimal"
    return make_result(problem, plan, capacity_bytes, status, lower, solver, start, mode, meta)


def _floor_objective(model: CosmaModel, lower: float) -> None:
    """State the proven bound as a row (objective >= bound): it cuts nothing feasible, and a solver
    that reaches it can stop, since it then knows its incumbent is optimal."""
    if lower > 0 and model.m.objective:
        model.m.add(dict(model.m.objective), ">=", math.ceil(lower - 1e-6) - model.m.objective_constant)


def _try_encode(model: CosmaModel, plan: Plan, meta: dict) -> list[int] | None:
    try:
        return model.encode(plan)
    except ValueError as why:  # a plan outside the model still bounds the result from above
        meta["warm_start_rejected"] = str(why)[:300]
        return None


def _infeasible(problem: MemoryProblem, capacity_bytes: int, order, why: str) -> InfeasibleError:
    return InfeasibleError(f"no mapping fits a scratchpad of {capacity_bytes} bytes ({why}; single operators "
                           f"need at most {problem.m_r} bytes, so the limit comes from "
                           f"{'the fixed order or ' if order is not None else ''}fragmentation)", field="scratchpad")
