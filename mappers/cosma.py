"""COSMA: one ILP for operator order, scratchpad addresses over time, and spills/reloads.

Reconstruction of Li, Gupta and Malik, "COSMA" (arXiv 2311.18246); the paper published no code.
Time is discretised into one step per operator. For on-chip tensor ``a`` and step ``t``:

- ``x[o,t]``  operator ``o`` runs at step ``t`` (one operator per step, each operator once);
- ``C``       created: ``x[producer(a), t]`` (outputs of one operator appear together);
- ``P[a,t]``  preserved: on chip at ``t-1`` and still at ``t``, *at the same address*;
- ``S[a,t]``  spilled: on chip at ``t-1``, written to DRAM, gone at ``t`` (at most once per
  tensor; DRAM keeps the copy, so a second spill would never help);
- ``R[a,t]``  retrieved (reloaded): needs an earlier spill (an intermediate) or nothing (a source,
  which lives in DRAM; its first load is compulsory). A reload may pick a new address;
- ``res = C + P + R``; at most one of C, P, R and never both S and P (the paper says at most
  one of all four; we also allow S and R at one step, which moves a tensor through DRAM to a new
  address; that only adds solutions, and the baselines' last resort uses it);
  ``P = S = 0`` at the first step a tensor can exist (so at ``t = 0``); an operator's in-scope
  inputs are P or R at its step;
- ``L[a,t]`` the integer address (in units of the GCD of tensor sizes, which loses nothing);
  ``L + size <= capacity``; co-resident tensors do not overlap (order binary ``y`` per pair and
  step, created only for pairs whose lifetimes can overlap).

Objective: ``sum size * (S + R) - (first loads of sources)`` = non-compulsory off-chip bytes
(see ``mappers/memory_problem.py`` for what is compulsory).

Restrictions that lose no optimality for this objective (they prune symmetric or dominated
solutions; the brute-force test searches without them): a reload happens only at a step where a
consumer runs (an earlier reload only occupies space), a tensor leaves the scratchpad after its
last use, and a source is first loaded by its first consumer.

Modes: ``full`` (order + allocation + replacement), ``fixed`` (allocation + replacement for a
given order), and ``min_peak_schedule`` (the order minimising the peak of live bytes with nothing
spilled, which defines the budget M_P).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations

from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.ir import Graph
from accelsim.mapping import Mapping
from mappers import milp
from mappers.memory_problem import MemoryProblem, greedy_min_peak_order  # noqa: F401 (re-exported)
from mappers.plan import Plan, plan_from_residency, to_mapping

DEFAULT_SOLVER = "cpsat"  # faster of the back-ends on benchmarks/cosma_backends.py (results/cosma_backends.md)
MODES = ("full", "fixed")


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


# --- windows ------------------------------------------------------------------------------------

def op_windows(problem: MemoryProblem, order: list[int] | None) -> list[range]:
    """Steps each operator may take: its position under a fixed order, else [ASAP, ALAP]."""
    n = problem.n_ops
    if order is not None:
        pos = {op: s for s, op in enumerate(order)}
        return [range(pos[o], pos[o] + 1) for o in range(n)]
    return [range(len(problem.ancestors[o]), n - len(problem.descendants[o])) for o in range(n)]


def _tensor_ends(problem: MemoryProblem, t: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Operators that can bring tensor ``t`` on chip first, and operators that last need it."""
    p = problem.producer[t]
    cons = problem.consumers[t]
    entry = (p,) if p is not None else cons
    exit_ = cons if cons else ((p,) if p is not None else ())
    return entry, exit_


# --- the model -------------------------------------------------------------------------------------

class CosmaModel:
    """The ILP for one problem, capacity and (optional) fixed order, with its variable maps.

    ``ops`` restricts the model to a piece of the graph (divide and conquer); the state at the
    piece's entry is given by ``entry`` (tensor -> byte offset of what is on chip), ``in_dram``
    (intermediates DRAM already holds) and ``loaded`` (sources already loaded once), and
    ``needed_after`` lists tensors later pieces read: each must end on chip or in DRAM.
    """

    def __init__(self, problem: MemoryProblem, capacity_bytes: int, order: list[int] | None = None, *,
                 ops: list[int] | None = None, entry: dict[int, int] | None = None, in_dram: set[int] | None = None,
                 loaded: set[int] | None = None, needed_after: set[int] | None = None) -> None:
        self.problem, self.capacity_bytes, self.order = problem, int(capacity_bytes), order
        self.ops = list(ops) if ops is not None else list(range(problem.n_ops))
        self.entry = dict(entry or {})
        self.in_dram = set(in_dram or ())
        self.loaded = set(loaded or ())
        self.needed_after = set(needed_after or ())
        g = problem.granule_bytes
        self.g = g
        self.cap_units = self.capacity_bytes // g
        self.units = [s // g for s in problem.tensor_bytes]
        self.windows = self._windows()
        self.m = milp.LinearModel()
        self._build()

    def _windows(self) -> dict[int, range]:
        """Steps each operator may take: its position under a fixed order, else [ASAP, ALAP] in the piece."""
        pb, ops = self.problem, self.ops
        if self.order is not None:
            pos = {op: s for s, op in enumerate(self.order)}
            return {o: range(pos[o], pos[o] + 1) for o in ops}
        inside = set(ops)
        n = len(ops)
        return {o: range(len(pb.ancestors[o] & inside), n - len(pb.descendants[o] & inside)) for o in ops}

    def _build(self) -> None:
        pb, m, W = self.problem, self.m, self.windows
        n = len(self.ops)
        inside = set(self.ops)
        self.x: dict[tuple[int, int], int] = {}
        for o in self.ops:
            for t in W[o]:
                self.x[o, t] = m.var(f"x[{o},{t}]")
        for o in self.ops:
            m.add({self.x[o, t]: 1 for t in W[o]}, "==", 1)
        for t in range(n):
            m.add({self.x[o, t]: 1 for o in self.ops if t in W[o]}, "==", 1)
        if self.order is None:  # precedence (implied by residency, stated for a tighter relaxation)
            for c in self.ops:
                for p in pb.preds[c] & inside:
                    row = {self.x[p, t]: t for t in W[p]}
                    for t in W[c]:
                        row[self.x[c, t]] = row.get(self.x[c, t], 0) - t
                    m.add(row, "<=", -1)

        self.steps: dict[int, range] = {}
        self.res: dict[tuple[int, int], int] = {}
        self.P: dict[tuple[int, int], int] = {}
        self.S: dict[tuple[int, int], int] = {}
        self.R: dict[tuple[int, int], int] = {}
        self.L: dict[tuple[int, int], int] = {}
        self.first_ops: dict[int, tuple[int, ...] | None] = {}
        self.last_ops: dict[int, tuple[int, ...] | None] = {}
        touched = {t for o in self.ops for t in (*pb.op_inputs[o], *pb.op_outputs[o])}
        for a in sorted(touched | set(self.entry)):
            if self.units[a] > self.cap_units:
                continue  # require_capacity has already rejected such a problem if the tensor is used
            prod = pb.producer[a] if pb.producer[a] in inside else None
            cons = tuple(c for c in pb.consumers[a] if c in inside)
            exit_need = a in self.needed_after
            if not cons and not exit_need and prod is None:
                continue  # neither used nor needed later: never on chip here
            first = None if a in self.entry else ((prod,) if prod is not None else cons)
            last = None if exit_need else (cons if cons else (prod,))
            self.first_ops[a], self.last_ops[a] = first, last
            start = 0 if first is None else min(W[o].start for o in first)
            end = n - 1 if last is None else max(W[o].stop - 1 for o in last)
            self.steps[a] = range(start, end + 1)
            self._tensor(a, prod, cons, exit_need)
        self._non_overlap()
        self._capacity_rows()
        self._objective()

    def _capacity_rows(self) -> None:
        """Bytes on chip per step fit the capacity: implied by non-overlap, stated for a tight relaxation."""
        per_step: dict[int, dict[int, int]] = {}
        for (a, t), v in self.res.items():
            row = per_step.setdefault(t, {})
            row[v] = row.get(v, 0) + self.units[a]
        for row in per_step.values():
            if sum(row.values()) > self.cap_units:
                self.m.add(row, "<=", self.cap_units)

    def _tensor(self, a: int, prod: int | None, cons: tuple[int, ...], exit_need: bool) -> None:
        pb, m, W, x = self.problem, self.m, self.windows, self.x
        steps = self.steps[a]
        at_entry = a in self.entry
        in_dram0 = prod is None and (pb.is_source(a) or a in self.in_dram)
        output_only = prod is not None and not cons and not exit_need
        use_steps = {t for c in cons for t in W[c]}
        for t in steps:
            self.L[a, t] = m.var(f"L[{a},{t}]", 0, self.cap_units - self.units[a])
            if output_only:  # exists only at its creating step, then it is stored and dropped
                self.res[a, t] = x[prod, t]
                continue
            r = self.res[a, t] = m.var(f"res[{a},{t}]")
            terms: dict[int, int] = {r: -1}
            excl: dict[int, int] = {}
            if prod is not None and t in W[prod]:
                terms[x[prod, t]] = 1
                excl[x[prod, t]] = 1
            has_prev = t > steps.start or at_entry
            if has_prev:
                P = self.P[a, t] = m.var(f"P[{a},{t}]")
                terms[P] = 1
                excl[P] = 1
                if t > steps.start:
                    m.add({P: 1, self.res[a, t - 1]: -1}, "<=", 0)
                    m.add({self.L[a, t]: 1, self.L[a, t - 1]: -1}, "==", 0, ((P, True),))
                else:  # on chip at the piece's entry, at its given offset
                    m.add({self.L[a, t]: 1}, "==", self.entry[a] // self.g, ((P, True),))
                if not in_dram0:
                    S = self.S[a, t] = m.var(f"S[{a},{t}]")
                    if t > steps.start:
                        m.add({S: 1, self.res[a, t - 1]: -1}, "<=", 0)
                    # a spill ends the stay: not preserved at t (a same-step reload is a move via DRAM)
                    m.add({S: 1, P: 1}, "<=", 1)
            if t in use_steps and (in_dram0 or has_prev):
                R = self.R[a, t] = m.var(f"R[{a},{t}]")
                terms[R] = 1
                excl[R] = 1
                row = {R: 1}  # reload only where a consumer runs
                for c in cons:
                    if t in W[c]:
                        row[x[c, t]] = row.get(x[c, t], 0) - 1
                m.add(row, "<=", 0)
                if not in_dram0:  # needs an earlier (or same-step) spill
                    row = {R: 1}
                    for t2 in range(steps.start, t + 1):
                        if (a, t2) in self.S:
                            row[self.S[a, t2]] = -1
                    m.add(row, "<=", 0)
            m.add(terms, "==", 0)
            if len(excl) > 1:
                m.add(excl, "<=", 1)
            # gone after the last use: resident only while some consumer is still to run
            if self.order is None and cons and not exit_need:
                row = {r: 1}
                for c in cons:
                    for t2 in W[c]:
                        if t2 < t:
                            row[x[c, t2]] = row.get(x[c, t2], 0) + 1
                m.add(row, "<=", len(cons))
        for c in cons:  # operands on chip when used
            for t in W[c]:
                row = {x[c, t]: 1}
                if (a, t) in self.P:
                    row[self.P[a, t]] = -1
                if (a, t) in self.R:
                    row[self.R[a, t]] = -1
                m.add(row, "<=", 0)
        spills = [self.S[a, t] for t in steps if (a, t) in self.S]
        if len(spills) > 1:
            m.add({v: 1 for v in spills}, "<=", 1)
        if exit_need and not in_dram0:  # later pieces read it: on chip at the end, or in DRAM
            row = {self.res[a, steps.stop - 1]: 1, **{v: 1 for v in spills}}
            m.add(row, ">=", 1)

    def _can_coexist(self, a: int, b: int) -> bool:
        pb = self.problem
        for u, v in ((a, b), (b, a)):
            last_u, first_v = self.last_ops[u], self.first_ops[v]
            if last_u is None or first_v is None:
                continue
            if all(e in pb.ancestors[f] for e in last_u for f in first_v):
                return False  # u is dead before v can appear
        return True

    def _non_overlap(self) -> None:
        m = self.m
        self.y: dict[tuple[int, int, int], int] = {}
        by_step: dict[int, list[int]] = {}
        for a, steps in self.steps.items():
            for t in steps:
                by_step.setdefault(t, []).append(a)
        pair_ok: dict[tuple[int, int], bool] = {}
        for t, tensors in by_step.items():
            for a, b in combinations(sorted(tensors), 2):
                if (a, b) not in pair_ok:
                    pair_ok[a, b] = self._can_coexist(a, b)
                if not pair_ok[a, b]:
                    continue
                ra, rb = self.res[a, t], self.res[b, t]
                y = self.y[a, b, t] = m.var(f"y[{a},{b},{t}]")
                La, Lb = self.L[a, t], self.L[b, t]
                m.add({La: 1, Lb: -1}, "<=", -self.units[a], ((ra, True), (rb, True), (y, True)))
                m.add({Lb: 1, La: -1}, "<=", -self.units[b], ((ra, True), (rb, True), (y, False)))

    def _objective(self) -> None:
        pb, m = self.problem, self.m
        for table in (self.S, self.R):
            for (a, t), v in table.items():
                m.objective[v] = m.objective.get(v, 0) + pb.tensor_bytes[a]
        inside = set(self.ops)
        m.objective_constant = -sum(pb.tensor_bytes[a] for a in self.steps if pb.is_source(a) and a not in self.loaded
                                    and any(c in inside for c in pb.consumers[a]))

    # --- solution <-> plan ------------------------------------------------------------------
    def decode_steps(self, values: list[int]) -> tuple[list[int], list[dict[int, int]], list[tuple[int, int]]]:
        """Order, per-step ``{tensor: offset}`` and ``(tensor, step)`` spills, in the model's local steps."""
        n = len(self.ops)
        order = [None] * n
        for (o, t), v in self.x.items():
            if values[v]:
                order[t] = o
        resident: list[dict[int, int]] = [dict() for _ in range(n)]
        for (a, t), v in self.res.items():
            if values[v]:
                resident[t][a] = values[self.L[a, t]] * self.g
        spills = [(a, t) for (a, t), v in self.S.items() if values[v]]
        return order, resident, spills

    def decode(self, values: list[int]) -> Plan:
        order, resident, spills = self.decode_steps(values)
        return plan_from_residency(self.problem, order, resident, spills)

    def encode(self, plan: Plan) -> list[int]:
        """The variable assignment of ``plan`` (a baseline) for warm starts; raises if it does not fit."""
        pb = self.problem
        values = [0] * self.m.n_vars
        pos = {op: s for s, op in enumerate(plan.order)}
        for (o, t), v in self.x.items():
            values[v] = int(pos[o] == t)
        resident = plan.residency(pb)
        arrivals = {(a, s) for k, a, s in plan.events if k in ("load", "reload")}
        for (a, t), v in self.S.items():
            values[v] = int(("spill", a, t) in plan.events)
        for a, steps in self.steps.items():
            for t in steps:
                here = a in resident[t]
                if (a, t) in self.res:
                    values[self.res[a, t]] = int(here)
                if here:
                    values[self.L[a, t]] = resident[t][a] // self.g
                if (a, t) in self.R:
                    values[self.R[a, t]] = int((a, t) in arrivals)
                if (a, t) in self.P:
                    created = pb.producer[a] is not None and pos[pb.producer[a]] == t
                    values[self.P[a, t]] = int(here and (a, t) not in arrivals and not created)
        for (a, b, t), v in self.y.items():
            if a in resident[t] and b in resident[t]:
                values[v] = int(resident[t][a] < resident[t][b])
        bad = self.m.violations(values)
        if bad:
            raise ValueError("plan does not satisfy the model: " + "; ".join(bad[:5]))
        return values


# --- entry points -----------------------------------------------------------------------------------

def solve_cosma(problem: MemoryProblem, capacity_bytes: int, *, mode: str = "full", order: list[int] | None = None,
                solver: str = DEFAULT_SOLVER, time_limit_s: float = 60.0, warm_start: Plan | None = None,
                threads: int = 2, seed: int = 0) -> CosmaResult:
    """Solve the COSMA ILP; the result is never worse than ``warm_start`` (kept when the solver falls short)."""
    if mode not in MODES:
        raise AccelsimError(f"unknown mode {mode!r}", field="mode", allowed=MODES)
    if mode == "fixed":
        if order is None:
            order = list(range(problem.n_ops))
        problem.check_order(order)
    else:
        order = None
    problem.require_capacity(capacity_bytes)
    start = time.perf_counter()
    if warm_start is not None and warm_start.non_compulsory_bytes(problem) == 0 and \
            (order is None or list(warm_start.order) == list(order)):
        # nothing beats zero traffic (the objective is never negative): no solve needed
        mapping = to_mapping(problem, warm_start, capacity_bytes, {
            "mapper": "cosma", "mode": mode, "solver": solver, "status": "optimal", "best_bound_bytes": 0,
            "gap": 0.0, "solve_s": 0.0, "note": "warm start already has zero non-compulsory bytes"})
        return CosmaResult(warm_start, mapping, 0, "optimal", 0.0, 0.0, solver, time.perf_counter() - start, mode,
                           int(capacity_bytes), {"warm_start_bytes": 0, "warm_start_rejected": None})
    model = CosmaModel(problem, capacity_bytes, order)
    hint = None
    if warm_start is not None:
        try:
            hint = model.encode(warm_start)
        except ValueError as why:  # a plan outside the model still bounds the result from above
            meta_reject = str(why)[:300]
        else:
            meta_reject = None
    build_s = time.perf_counter() - start
    res = milp.solve(model.m, solver, time_limit_s, hint, threads, seed)
    meta = {"build_s": build_s, "variables": model.m.n_vars, "constraints": len(model.m.rows),
            "warm_start_rejected": meta_reject if warm_start is not None else None}
    if res.status == "infeasible":
        raise InfeasibleError(f"no mapping fits a scratchpad of {capacity_bytes} bytes (the solver proved it; "
                              f"single operators need at most {problem.m_r} bytes, so the limit comes from "
                              "fragmentation or the fixed order)", field="scratchpad")
    base_obj = warm_start.non_compulsory_bytes(problem) if warm_start is not None else None
    if res.values is not None and (base_obj is None or res.objective <= base_obj):
        plan = model.decode(res.values)
        status = res.status
        objective = plan.non_compulsory_bytes(problem)
        if objective != round(res.objective):
            raise RuntimeError(f"decoded plan costs {objective} B but the solver reports {res.objective} B")
    elif warm_start is not None:
        plan, status, objective = warm_start, "baseline", base_obj
    else:
        raise InfeasibleError(f"the {solver} solver found no mapping within {time_limit_s} s "
                              "(give more time or a warm start)", field="time_limit")
    bound = res.best_bound
    gap = milp.relative_gap(objective, bound)
    if status == "optimal":
        gap = 0.0
    total_s = time.perf_counter() - start
    meta.update({"solver_status": res.status, "solver_objective": res.objective, "warm_start_bytes": base_obj})
    mapping = to_mapping(problem, plan, capacity_bytes, {
        "mapper": "cosma", "mode": mode, "solver": solver, "status": status, "best_bound_bytes": bound,
        "gap": gap, "solve_s": total_s})
    return CosmaResult(plan, mapping, objective, status, bound, gap, solver, total_s, mode, int(capacity_bytes),
                       meta)


# --- minimum-peak schedule (budget M_P) -------------------------------------------------------------

@dataclass
class PeakResult:
    order: list[int]
    peak_bytes: int
    status: str
    best_bound: float | None
    solve_s: float


def min_peak_schedule(problem: MemoryProblem, *, solver: str = DEFAULT_SOLVER, time_limit_s: float = 60.0,
                      hint_order: list[int] | None = None, threads: int = 2, seed: int = 0) -> PeakResult:
    """The order minimising the largest sum of live bytes (nothing spilled); its peak is M_P."""
    pb, n = problem, problem.n_ops
    W = op_windows(pb, None)
    m = milp.LinearModel()
    x = {(o, t): m.var(f"x[{o},{t}]") for o in range(n) for t in W[o]}
    for o in range(n):
        m.add({x[o, t]: 1 for t in W[o]}, "==", 1)
    for t in range(n):
        m.add({x[o, t]: 1 for o in range(n) if t in W[o]}, "==", 1)
    for c in range(n):
        for p in pb.preds[c]:
            row = {x[p, t]: t for t in W[p]}
            for t in W[c]:
                row[x[c, t]] = row.get(x[c, t], 0) - t
            m.add(row, "<=", -1)

    def done_by(o: int, t: int, inclusive: bool) -> dict[int, int]:
        return {x[o, s]: 1 for s in W[o] if (s <= t if inclusive else s < t)}

    peak = m.var("peak", 0, sum(pb.tensor_bytes))
    live: dict[tuple[int, int], int] = {}
    for a in range(pb.n_tensors):
        entry, exit_ = _tensor_ends(pb, a)
        if not exit_:
            continue
        start = min(W[o].start for o in entry)
        end = max(W[o].stop - 1 for o in exit_)
        for t in range(start, end + 1):
            v = live[a, t] = m.var(f"live[{a},{t}]")
            if pb.is_graph_output(a):
                p = pb.producer[a]
                if t in W[p]:
                    m.add({v: 1, x[p, t]: -1}, ">=", 0)
                continue
            # live >= (an entry op ran by t) + (consumer c not yet run before t) - 1
            for e in entry:
                for c in pb.consumers[a]:
                    row = {v: 1}
                    for var, coef in done_by(e, t, True).items():
                        row[var] = row.get(var, 0) - coef
                    for var, coef in done_by(c, t, False).items():
                        row[var] = row.get(var, 0) + coef
                    m.add(row, ">=", 0)
    for t in range(n):
        row = {peak: 1}
        for (a, s), v in live.items():
            if s == t:
                row[v] = -pb.tensor_bytes[a]
        m.add(row, ">=", 0)
    m.objective = {peak: 1}
    hint = None
    if hint_order is not None:
        pos = {op: s for s, op in enumerate(hint_order)}
        values = [0] * m.n_vars
        for (o, t), v in x.items():
            values[v] = int(pos[o] == t)
        intervals = pb.live_intervals(hint_order)
        for (a, t), v in live.items():
            iv = intervals[a]
            values[v] = int(iv is not None and iv[0] <= t <= iv[1])
        values[peak] = pb.peak_bytes(hint_order)
        hint = values if not m.violations(values) else None
    res = milp.solve(m, solver, time_limit_s, hint, threads, seed)
    if res.values is None:
        if hint_order is None:
            raise InfeasibleError(f"no schedule found within {time_limit_s} s", field="time_limit")
        return PeakResult(list(hint_order), pb.peak_bytes(hint_order), "baseline", res.best_bound, res.solve_s)
    order = [None] * n
    for (o, t), v in x.items():
        if res.values[v]:
            order[t] = o
    peak_b = pb.peak_bytes(order)
    if hint_order is not None and pb.peak_bytes(hint_order) < peak_b:
        order, peak_b = list(hint_order), pb.peak_bytes(hint_order)
    return PeakResult(order, peak_b, res.status, res.best_bound, res.solve_s)


# --- budgets ------------------------------------------------------------------------------------------

BUDGETS = ("M_R", "M_H", "M_P")


def budgets(problem: MemoryProblem, *, solver: str = DEFAULT_SOLVER, time_limit_s: float = 60.0) -> dict:
    """M_R (largest single-operator working set), M_P (minimum peak over orders), M_H = (M_R + M_P) / 2.

    M_P comes from ``min_peak_schedule``; if that stops at the time limit the value is the best
    order found (an upper bound on the true minimum peak) and ``m_p_status`` says so.
    """
    default = list(range(problem.n_ops))
    greedy = greedy_min_peak_order(problem)
    hint = min((default, greedy), key=problem.peak_bytes)
    peak = min_peak_schedule(problem, solver=solver, time_limit_s=time_limit_s, hint_order=hint)
    m_r, m_p = problem.m_r, peak.peak_bytes
    return {"M_R": m_r, "M_P": m_p, "M_H": (m_r + m_p) // 2, "m_p_status": peak.status,
            "min_peak_order": peak.order}


def cosma_map(graph: Graph, capacity_bytes: int, *, with_weights: bool = False, **options) -> CosmaResult:
    """``map(graph, capacity)``: the full COSMA mapper warm-started from the best baseline."""
    from mappers.baselines import best_baseline

    problem = MemoryProblem.from_graph(graph, with_weights)
    problem.require_capacity(capacity_bytes)
    base = best_baseline(problem, capacity_bytes)
    return solve_cosma(problem, capacity_bytes, warm_start=base.plan, **options)
