"""A lower bound that rises with effort: best-first branch and bound over the order of operators.

Why: the order-free bound of ``mappers/bounds.py`` lets every operator pick its own most
favourable set of earlier operators, and ``mappers/order_bounds.py`` fixes the order of only a
few groups; on the NAS networks both stay far below the plans (PNASNet-5 at M_R: 0 and 163 KB
against 414 KB). Yet the same bound under a *complete* order is tight there: for the divide and
conquer plan's own order it equals the plan's 413,952 bytes. So the bound is weak only because
the order is left open, and branching on the order closes it step by step.

The argument (the one of ``mappers/order_bounds.py``, applied recursively). A node is the graph
plus extra precedence edges; its bound, ``B(G + edges)`` of ``mappers/bounds.py``, holds for
every schedule that respects those edges. Branching takes two operators ``o, u`` the node leaves
unordered and makes two children, ``o -> u`` and ``u -> o``: every schedule of the node is a
schedule of one child, so the smallest bound over the open nodes (the frontier) bounds every
schedule of the graph. A child's bound is at least its parent's (taken as the larger of both).
The search expands the open node with the smallest bound, so the frontier's minimum only rises:
more nodes never give a smaller bound. It stops when that minimum reaches ``upper_bytes`` (a
known plan's cost: then that plan is optimal), when the node budget is spent, or when the
cheapest node orders every operator (nothing left to branch on).

Branching rule (a heuristic; any rule keeps the bound valid): the operator with the least slack
(room its working set leaves minus the fewest bytes that must be live across it), against the
unordered operator that moves the most bytes (inputs plus outputs), since placing that one before
or after changes most what is live there.

Leaves. A node is a leaf when every tight operator is ordered against every other operator: then
the tight operators form a chain and what is live across each of them is the same in every
schedule of the node. There the per-operator covering is replaced by an exact count over that
chain (``_leaf_bound``): a small ILP that charges every spell off chip while live one reload (and
an intermediate its spill), which the covering counts only once per tensor (AmoebaNet-D at M_R:
1,455,104 bytes by covering at the first leaf, where one schedule of it costs 2,257,920). A leaf is
refined once and put back; a refined leaf at the top of the heap ends the search.

Work is counted in nodes, not seconds, so a run gives the same bound on a loaded machine; the
wall clock is only a safety net. A child recomputes only the operators whose term the new edge
can change: those whose ancestors or descendants change, or for which it joins two operators
free to run on either side (``_unchanged``); the rest are the parent's.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

from mappers import milp
from mappers.bounds import Precedence, bound_from_terms, candidates, min_live_bytes, tight_ops
from mappers.memory_problem import MemoryProblem

SEARCH_NODES_PER_S = 20  # nodes per nominal second of a budget; a design choice: 1,000 nodes took 40 CPU s on
# PNASNet-5 and 55 on NASNet-A at M_R (activations), so a nominal second is about a CPU second

LEAF_BOUND_S = 2.0  # nominal (deterministic) seconds for one leaf's ILP; a design choice (the AmoebaNet-D leaves
# close in well under a second); a leaf stopped early keeps the solver's proven bound

Term = tuple[int, int, set[int]]


@dataclass
class SearchBound:
    bytes: int
    nodes: int  # children evaluated
    open_nodes: int
    closed: bool  # the frontier reached ``upper_bytes``: a plan of that cost is optimal
    wall_capped: bool = False
    at_leaf: bool = False  # the cheapest node orders every tight operator: more nodes cannot raise the bound
    leaf_order: list[int] | None = None  # at a leaf: one schedule of it (``prefer_order`` where the leaf leaves
    # the order free), for a fixed-order solve (``divide_and_conquer``)


def _op_info(pb: MemoryProblem, capacity_bytes: int, o: int, prec: Precedence) -> tuple[int, Term | None]:
    """``(slack bytes, term)``: room left beside the fewest bytes live across ``o`` (negative: a
    deficit, and then the term ``mappers.bounds`` counts for it)."""
    room = capacity_bytes - pb.working_set_bytes(o)
    cand = candidates(pb, o, prec)
    total = sum(pb.tensor_bytes[a] for a in cand)
    if total <= room:
        return room - total, None
    deficit = min_live_bytes(pb, o, cand, prec) - room
    if deficit <= 0:
        return -deficit, None
    factor = 1 if any(pb.is_source(a) for a in cand) else 2
    return -deficit, (factor * deficit, o, cand)


def _free(prec: Precedence, o: int, u: int) -> bool:
    return u != o and u not in prec.ancestors[o] and u not in prec.descendants[o]


def _unchanged(parent: Precedence, child: Precedence, o: int, edge: tuple[int, int]) -> bool:
    """The term of ``o`` depends on its ancestors, descendants and the direct edges among operators
    free on either side of it (``bounds.min_live_bytes``); an edge with an end outside that free
    set either changes ``o``'s ancestors or descendants or is implied by them."""
    a, b = edge
    return (parent.ancestors[o] == child.ancestors[o] and parent.descendants[o] == child.descendants[o]
            and not (_free(parent, o, a) and _free(parent, o, b)))


def order_search_bound(problem: MemoryProblem, capacity_bytes: int, *, max_nodes: int,
                       upper_bytes: int | None = None, cover_s: float = 0.5,
                       wall_limit_s: float = 120.0, prefer_order: list[int] | None = None) -> SearchBound:
    """The smallest bound over the open nodes after at most ``max_nodes`` children (module docstring);
    ``prefer_order`` (the plan behind ``upper_bytes``) completes a leaf into ``leaf_order``."""
    pb = problem
    deadline = time.perf_counter() + wall_limit_s
    tight = tight_ops(pb, capacity_bytes)
    weight = {u: sum(pb.tensor_bytes[t] for t in (*pb.op_inputs[u], *pb.op_outputs[u])) for u in range(pb.n_ops)}
    root_prec = Precedence.of(pb)
    root_info = {o: _op_info(pb, capacity_bytes, o, root_prec) for o in tight}

    def bound_of(info: dict[int, tuple[int, Term | None]], prec: Precedence) -> int:
        return bound_from_terms(pb, [t for _, t in info.values() if t is not None], cover_s, prec).bytes

    # heap entries: (bound, tie, edges, info, leaf state); ties go to the deeper node (fewer open nodes);
    # leaf state: 0 inner node, 1 leaf not yet refined, 2 refined leaf
    heap = [(bound_of(root_info, root_prec), 0, (), root_info, 0)]
    nodes = tie = 0
    capped = False
    while True:
        low, _, edges, info, leaf = heap[0]
        if leaf == 2 or (upper_bytes is not None and low >= upper_bytes) or nodes >= max_nodes:
            break
        if time.perf_counter() > deadline:
            capped = True
            break
        heapq.heappop(heap)
        prec = Precedence.of(pb, edges)
        pair = None if leaf else _branch_pair(pb, prec, info, weight)
        if pair is None:  # every tight operator's place is fixed: branching cannot raise this node
            refined = _leaf_bound(pb, capacity_bytes, prec, tight, deadline - time.perf_counter())
            heapq.heappush(heap, (max(low, refined), tie, edges, info, 2))
            continue
        for edge in (pair, pair[::-1]):
            child_edges = edges + (edge,)
            child = Precedence.of(pb, child_edges)
            child_info = {o: info[o] if _unchanged(prec, child, o, edge) else _op_info(pb, capacity_bytes, o, child)
                          for o in tight}
            nodes += 1
            tie -= 1
            heapq.heappush(heap, (max(low, bound_of(child_info, child)), tie, child_edges, child_info, 0))
    low, _, edges, _, leaf = heap[0]
    return SearchBound(low, nodes, len(heap), upper_bytes is not None and low >= upper_bytes, capped, leaf == 2,
                       linear_extension(Precedence.of(pb, edges), prefer_order) if leaf == 2 else None)


def linear_extension(prec: Precedence, prefer: list[int] | None = None) -> list[int]:
    """A schedule respecting ``prec``: of the ready operators, the earliest in ``prefer`` (a known
    good schedule; default the graph's order) first."""
    rank = {o: k for k, o in enumerate(prefer)} if prefer is not None else {o: o for o in range(len(prec.preds))}
    waiting = [len(p) for p in prec.preds]
    succs: list[list[int]] = [[] for _ in waiting]
    for b, ps in enumerate(prec.preds):
        for a in ps:
            succs[a].append(b)
    ready = [(rank[o], o) for o, left in enumerate(waiting) if not left]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        o = heapq.heappop(ready)[1]
        order.append(o)
        for s in succs[o]:
            waiting[s] -= 1
            if not waiting[s]:
                heapq.heappush(ready, (rank[s], s))
    return order


def _leaf_bound(pb: MemoryProblem, capacity_bytes: int, prec: Precedence, tight: list[int],
                wall_limit_s: float) -> int:
    """Fewest non-compulsory bytes over the chain of tight operators of a leaf (module docstring).

    ``on[a, i]``: tensor ``a`` on chip when the ``i``-th tight operator runs, over the steps where
    ``a`` is live (in its working set: fixed on). Any plan of any schedule of the leaf gives such
    an assignment within capacity; a spell off chip while live ends in a reload (``a`` is read
    later), and an intermediate off chip was spilled once. Non-tight operators' own needs are
    dropped, which only lowers the count."""
    chain = sorted(tight, key=lambda o: len(prec.ancestors[o]))  # at a leaf they are pairwise ordered
    m = milp.LinearModel()
    per_step: list[dict[int, int]] = [dict() for _ in chain]
    fixed = [0] * len(chain)
    for a in range(pb.n_tensors):
        cons = pb.consumers[a]
        if not cons:
            continue
        made = (pb.producer[a],) if pb.producer[a] is not None else cons
        live: list[tuple[int, bool]] = []  # (chain index, in the working set)
        for i, o in enumerate(chain):
            if a in pb.op_inputs[o] or a in pb.op_outputs[o]:
                live.append((i, True))
            elif any(u in prec.ancestors[o] for u in made) and any(c in prec.descendants[o] for c in cons):  # in every schedule
                live.append((i, False))
        if all(used for _, used in live):
            for i, _ in live:
                fixed[i] += pb.tensor_bytes[a]
            continue
        size = pb.tensor_bytes[a]
        spill = None if pb.is_source(a) else m.var(f"spill[{a}]")
        prev = None  # the on-chip literal of the previous live step (None: fixed on)
        for k, (i, used) in enumerate(live):
            if used:
                fixed[i] += size
                on = None
            else:
                on = m.var(f"on[{a},{i}]")
                per_step[i][on] = size
                # a spell off chip starts here if a was on chip (or just made) one live step before
                start = m.var(f"start[{a},{i}]")
                row = {start: 1, on: 1}
                if k and prev is not None:
                    row[prev] = -1
                m.add(row, ">=", 1 if k == 0 or prev is None else 0)
                m.objective[start] = size
                if spill is not None:
                    m.add({spill: 1, start: -1}, ">=", 0)
            prev = on
        if spill is not None:
            m.objective[spill] = size
    for i, row in enumerate(per_step):
        if row and fixed[i] + sum(row.values()) > capacity_bytes:
            m.add(row, "<=", capacity_bytes - fixed[i])
    if not m.objective:
        return 0
    res = milp.solve(m, "cpsat", LEAF_BOUND_S, None, 1, 0, wall_limit_s=max(0.05, wall_limit_s))
    bound = res.objective if res.status == "optimal" else res.best_bound
    return max(0, math.ceil(bound - 1e-6)) if bound is not None else 0


def _branch_pair(pb: MemoryProblem, prec: Precedence, info: dict[int, tuple[int, Term | None]],
                 weight: dict[int, int]) -> tuple[int, int] | None:
    for o in sorted(info, key=lambda o: (info[o][0], o)):
        free = [u for u in range(pb.n_ops) if _free(prec, o, u)]
        if free:
            return o, max(free, key=lambda u: (weight[u], -u))
    return None

