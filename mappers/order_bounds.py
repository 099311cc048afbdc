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

Groups: the tight operators with the least room, each with the next least-room tight operators
that are unordered with it and with each other (``group_size`` at most, so at most
``group_size!`` orders per group).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import permutations

from mappers.bounds import Precedence, static_lower_bound, tight_ops
from mappers.memory_problem import MemoryProblem


@dataclass
class OrderBound:
    bytes: int
    group: tuple[int, ...] = ()  # the operators branched on for ``bytes``
    groups_tried: int = 0
    orders_tried: int = 0
    complete: bool = True  # False if the time limit cut the search (the bound is still valid)
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
                          max_groups: int = 4, time_limit_s: float = 10.0, cover_s: float = 0.5,
                          at_least: int = 0) -> OrderBound:
    """The best ``min over orders of F`` bound over a few groups ``F`` (module docstring).

    ``at_least``: a bound already known; a group stops as soon as one of its orders cannot beat it.
    """
    deadline = time.perf_counter() + time_limit_s
    tight = tight_ops(problem, capacity_bytes)
    graph_terms: dict = {}
    static_lower_bound(problem, capacity_bytes, 0.0, None, tight, graph_terms)  # fills the cache
    best = OrderBound(0)
    floor = at_least
    for group in _groups(problem, capacity_bytes, tight, group_size, max_groups):
        if time.perf_counter() > deadline:
            best.complete = False
            break
        best.groups_tried += 1
        low = None
        for pi in permutations(group):
            if time.perf_counter() > deadline:
                low = None  # an unfinished group proves nothing
                best.complete = False
                break
            prec = Precedence.of(problem, tuple(zip(pi, pi[1:])))
            b = static_lower_bound(problem, capacity_bytes, cover_s, prec, tight, graph_terms).bytes
            best.orders_tried += 1
            low = b if low is None else min(low, b)
            if low <= max(floor, best.bytes):
                break  # this group cannot improve on what is known
        if low is not None and low > best.bytes:
            best.bytes, best.group = low, group
    return best
