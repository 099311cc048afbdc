"""The COSMA model: operator order, scratchpad addresses over time, and spills/reloads as one ILP.

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
  ``L + size <= capacity``; co-resident tensors do not overlap.

Non-overlap comes in two forms (``overlap=``): ``pairs`` is the paper's, one order binary ``y``
per pair and step with two big-M rows (created only for pairs whose lifetimes can overlap);
``intervals`` gives the solver one no-overlap constraint per step over optional address
intervals ``[L, L + size)`` present when ``res`` is 1 (CP-SAT's ``AddNoOverlap``; the PuLP and
HiGHS back-ends expand it into pairs again). ``addresses=False`` drops addresses altogether and
keeps only the per-step capacity rows: the *cumulative relaxation*, whose optimum is a lower
bound on the full model (every full solution is one of its solutions).

Objective: ``sum size * (S + R) - (first loads of sources)`` = non-compulsory off-chip bytes
(see ``mappers/memory_problem.py`` for what is compulsory).

Restrictions that lose no optimality for this objective (they prune symmetric or dominated
solutions; the brute-force test searches without them): a reload happens only at a step where a
consumer runs (an earlier reload only occupies space), a tensor leaves the scratchpad after its
last use, and a source is first loaded by its first consumer.
"""
from __future__ import annotations

from itertools import combinations

from mappers import milp
from mappers.memory_problem import MemoryProblem
from mappers.plan import Plan, plan_from_residency

OVERLAP_FORMS = ("intervals", "pairs")


def op_windows(problem: MemoryProblem, order: list[int] | None, ops: list[int] | None = None) -> dict[int, range]:
    """Steps each operator of ``ops`` (default: all) may take: its position under a fixed order,
    else [ASAP, ALAP] counted inside ``ops`` (a piece of the graph in divide and conquer)."""
    ops = list(range(problem.n_ops)) if ops is None else list(ops)
    if order is not None:
        pos = {op: s for s, op in enumerate(order)}
        return {o: range(pos[o], pos[o] + 1) for o in ops}
    inside = set(ops)
    n = len(ops)
    return {o: range(len(problem.ancestors[o] & inside), n - len(problem.descendants[o] & inside)) for o in ops}


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
    ``exit_cost`` charges each of those that ends off chip the reload a later piece will pay for
    it, so a piece cannot look cheap by handing the next one a worse state.
    ``free_tensors`` cost nothing to move (they still take space while on chip): the lower-bound
    pieces of ``mappers.bounds`` charge every tensor to one piece only.
    """

    def __init__(self, problem: MemoryProblem, capacity_bytes: int, order: list[int] | None = None, *,
                 ops: list[int] | None = None, entry: dict[int, int] | None = None, in_dram: set[int] | None = None,
                 loaded: set[int] | None = None, needed_after: set[int] | None = None, addresses: bool = True,
                 overlap: str = "intervals", free_tensors: set[int] | None = None, exit_cost: bool = False) -> None:
        if overlap not in OVERLAP_FORMS:
            raise ValueError(f"overlap must be one of {OVERLAP_FORMS}, got {overlap!r}")
        self.problem, self.capacity_bytes, self.order = problem, int(capacity_bytes), order
        self.ops = list(ops) if ops is not None else list(range(problem.n_ops))
        self.entry = dict(entry or {})
        self.in_dram = set(in_dram or ())
        self.loaded = set(loaded or ())
        self.needed_after = set(needed_after or ())
        self.addresses, self.overlap = addresses, overlap
        self.free_tensors = set(free_tensors or ())
        self.exit_cost = exit_cost
        g = problem.granule_bytes
        self.g = g
        self.cap_units = self.capacity_bytes // g
        self.units = [s // g for s in problem.tensor_bytes]
        self.windows = op_windows(problem, order, self.ops)
        self.m = milp.LinearModel()
        self._build()

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
        self.exit_gone: dict[int, int] = {}
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
            if self.addresses:
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
                    if self.addresses:
                        m.add({self.L[a, t]: 1, self.L[a, t - 1]: -1}, "==", 0, ((P, True),))
                elif self.addresses:  # on chip at the piece's entry, at its given offset
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
        first_load_is_later = pb.is_source(a) and a not in self.loaded and not cons
        if exit_need and self.exit_cost and a not in self.free_tensors and not first_load_is_later:
            # off chip at the exit: a later piece pays at least one reload of it
            gone = self.exit_gone[a] = m.var(f"gone[{a}]")
            m.add({gone: 1, self.res[a, steps.stop - 1]: 1}, ">=", 1)

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
        if not self.addresses:
            return
        by_step: dict[int, list[int]] = {}
        for a, steps in self.steps.items():
            for t in steps:
                by_step.setdefault(t, []).append(a)
        if self.overlap == "intervals":
            for t, tensors in sorted(by_step.items()):
                if len(tensors) > 1:
                    m.no_overlap([(self.L[a, t], self.units[a], self.res[a, t]) for a in sorted(tensors)])
            return
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
                if a not in self.free_tensors:
                    m.objective[v] = m.objective.get(v, 0) + pb.tensor_bytes[a]
        for a, v in self.exit_gone.items():
            m.objective[v] = m.objective.get(v, 0) + pb.tensor_bytes[a]
        inside = set(self.ops)
        m.objective_constant = -sum(pb.tensor_bytes[a] for a in self.steps if pb.is_source(a) and a not in self.loaded
                                    and a not in self.free_tensors and any(c in inside for c in pb.consumers[a]))

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
                resident[t][a] = values[self.L[a, t]] * self.g if self.addresses else 0
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
                if here and (a, t) in self.L:
                    values[self.L[a, t]] = resident[t][a] // self.g
                if (a, t) in self.R:
                    values[self.R[a, t]] = int((a, t) in arrivals)
                if (a, t) in self.P:
                    created = pb.producer[a] is not None and pos[pb.producer[a]] == t
                    values[self.P[a, t]] = int(here and (a, t) not in arrivals and not created)
        for (a, b, t), v in self.y.items():
            if a in resident[t] and b in resident[t]:
                values[v] = int(resident[t][a] < resident[t][b])
        last = len(self.ops) - 1
        for a, v in self.exit_gone.items():
            values[v] = int(a not in resident[last]) if last >= 0 else 0
        bad = self.m.violations(values)
        if bad:
            raise ValueError("plan does not satisfy the model: " + "; ".join(bad[:5]))
        return values


