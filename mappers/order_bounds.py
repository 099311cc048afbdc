"""A lower bound that branches on the relative order of a few operators that cannot all run in an empty scratchpad.

Why: the order-free bound of ``mappers/bounds.py`` takes, at each operator, the most favourable
set of operators run before it, separately for each operator; those sets need not come from one
schedule. DeepLabV3's ASPP is the case in point: three 3x3 branches each fill the scratchpad
(room 0 at M_R), each alone could run with nothing else live, so every per-operator term is 0;
but whichever branch runs second (third) finds one (two) earlier branch outputs live, waiting
for the concatenation that needs them all, so 2 x 196 KiB must be spilled and reloaded. The
whole-graph cumulative relaxation proves it, but not within a minute on the 198 unfused
operators (and an 18-operator piece of it does not close in 30 s either: its LP spreads each
branch fractionally over all steps).

The argument. Let ``F`` be operators no two of which are ordered by the graph. Every schedule
runs them in some order ``pi``, so it is a schedule of the graph with the extra edges
``pi[0] -> pi[1] -> ...`` added. Every step of the order-free bound holds for the schedules of
any DAG over the same operators and tensors (``bounds.Precedence``: operators run before ``o``
form a set closed under the DAG's predecessors, candidates are those tensors that such a set
can leave live across ``o``), so ``B(G + chain(pi))`` bounds every schedule ordering ``F`` as
``pi``, and ``min over pi of B(G + chain(pi))`` bounds every schedule. The maximum over several
groups ``F`` is again a bound (callers also keep the larger of it and ``B(G)``). Only operators
that can have a term at all (``bounds.tight_ops``) are recomputed.

Several groups at once (``_disjunctive_covering``): a plan runs *every* group in some order, so
the covering problem of ``mappers/bounds.py`` stays a bound when, for each group, the terms of
at least one of its orders must hold (a binary selector per order); it sums what separate groups
force, which the maximum over groups cannot. Only groups whose every order was computed take part.

Groups: the tight operators with the least room, each with the next least-room tight operators
that are unordered with it and with each other (``group_size`` at most, so at most
``group_size!`` orders per group).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from itertools import permutations

from mappers import milp
from mappers.bounds import Precedence, bound_from_terms, op_terms, tight_ops
from mappers.memory_problem import MemoryProblem


DISJUNCTIVE_COVER_S = 2.0  # nominal (deterministic) seconds for the covering over all groups; a design choice


@dataclass
class OrderBound:
    bytes: int
    group: tuple[int, ...] = ()  # the operators branched on for ``bytes``
    groups_tried: int = 0
    orders_tried: int = 0
    complete: bool = True  # False if the wall-clock safety net cut the search (the bound is still valid)
    wall_capped: bool = False
    per_order: dict = field(default_factory=dict)


def _groups(problem: MemoryProblem, capacity_bytes: int, tight: list[int], group_size: int,
            max_groups: int) -> list[tuple[int, ...]]:
    pb = problem
    by_room = sorted(tight, key=lambda o: (capacity_bytes - pb.working_set_bytes(o), o))
    unordered = lambda a, b: a not in pb.ancestors[b] and b not in pb.ancestors[a]
    out: list[tuple[int, ...]] = []
    for seed in by_room:
        group = [seed]
        for o in by_room:
            if len(group) == group_size:
                break
            if o not in group and all(unordered(o, g) for g in group):
                group.append(o)
        key = tuple(sorted(group))
        if len(key) > 1 and key not in out:
            out.append(key)
        if len(out) == max_groups:
            break
    return out


def order_branching_bound(problem: MemoryProblem, capacity_bytes: int, *, group_size: int = 3,
                          max_groups: int = 4, wall_limit_s: float = 120.0, cover_s: float = 0.5,
                          at_least: int = 0) -> OrderBound:
    """The best of: per group ``F``, ``min over orders of F`` of the bound; and the disjunctive
    covering over all groups searched to the end (module docstring).

    The work is fixed by ``group_size`` and ``max_groups`` (at most ``max_groups * group_size!``
    orders), and the covering problems have deterministic budgets (``cover_s`` nominal seconds),
    so the result does not depend on the machine's load. ``wall_limit_s`` is only a safety net:
    if it stops the search, ``complete`` and ``wall_capped`` say so (the bound stays valid).

    ``at_least`` (a bound already known) is only reported against: the result is never below 0,
    and callers keep the larger of both.
    """
    deadline = time.perf_counter() + wall_limit_s
    tight = tight_ops(problem, capacity_bytes)
    graph_terms: dict = {}
    base = op_terms(problem, capacity_bytes, None, tight, graph_terms)  # fills the cache
    best = OrderBound(0)
    complete: list[list[list[tuple[int, int, set[int]]]]] = []  # per group searched to the end: terms per order
    for group in _groups(problem, capacity_bytes, tight, group_size, max_groups):
        if time.perf_counter() > deadline:
            best.complete, best.wall_capped = False, True
            break
        best.groups_tried += 1
        low, per_order = None, []
        for pi in permutations(group):
            if time.perf_counter() > deadline:
                low = None  # an unfinished group proves nothing
                best.complete, best.wall_capped = False, True
                break
            prec = Precedence.of(problem, tuple(zip(pi, pi[1:])))
            changed = [o for o in tight if not prec.same_term_as_graph(problem, o)]
            terms = op_terms(problem, capacity_bytes, prec, tight, graph_terms)
            per_order.append([t for t in terms if t[1] in changed])
            b = bound_from_terms(problem, terms, cover_s, prec).bytes
            best.orders_tried += 1
            low = b if low is None else min(low, b)
        if low is None:
            continue
        complete.append(per_order)
        if low > best.bytes:
            best.bytes, best.group = low, group
    if len(complete) > 1 and base:
        left = deadline - time.perf_counter()
        if left > 0.05:
            d = _disjunctive_covering(problem, base, complete, DISJUNCTIVE_COVER_S, left)
            if d > best.bytes:
                best.bytes, best.group = d, ()
        else:
            best.complete, best.wall_capped = False, True
    return best


def _disjunctive_covering(problem: MemoryProblem, base: list[tuple[int, int, set[int]]],
                          groups: list[list[list[tuple[int, int, set[int]]]]], time_limit_s: float,
                          wall_limit_s: float | None = None) -> int:
    """Proven bound of: min sum c size z over binary z (z[a] = 1 if ``a`` is ever off chip while
    live; c = 1 for a source, 2 otherwise) such that every term of the graph holds, and for each
    group, for at least one of its orders (selector y), every term under that order holds.

    Why it is a bound: take any plan and its z. The graph's terms hold for every schedule; the plan
    runs each group in one order, and the terms computed under that order hold for it (module
    docstring), so setting y to the orders the plan uses satisfies every row, and the plan costs at
    least the objective (``mappers/bounds.py``, covering)."""
    pb = problem

    def deficit(term):
        lb, _, cand = term
        return lb // (1 if any(pb.is_source(a) for a in cand) else 2)

    m = milp.LinearModel()
    z: dict[int, int] = {}

    def row(term):
        cand = term[2]
        for a in cand:
            if a not in z:
                z[a] = m.var(f"z[{a}]")
        return {z[a]: pb.tensor_bytes[a] for a in cand}

    for term in base:
        m.add(row(term), ">=", deficit(term))
    for g, per_order in enumerate(groups):
        ys = [m.var(f"y[{g},{k}]") for k in range(len(per_order))]
        m.add({y: 1 for y in ys}, "==", 1)
        for y, terms in zip(ys, per_order):
            for term in terms:
                m.add(row(term), ">=", deficit(term), ((y, True),))
    m.objective = {v: (1 if pb.is_source(a) else 2) * pb.tensor_bytes[a] for a, v in z.items()}
    res = milp.solve(m, "cpsat", time_limit_s, None, 1, 0, wall_limit_s)
    b = res.objective if res.status == "optimal" else res.best_bound
    return max(0, math.ceil(b - 1e-6)) if b is not None else 0
