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
cheapest node is a leaf (below: nothing left to branch on).

Branching rule (a heuristic; any rule keeps the bound valid): the operator with the least slack
(room its working set leaves minus the fewest bytes that must be live across it), against the
unordered operator that moves the most bytes (inputs plus outputs), since placing that one before
or after changes most what is live there.

Leaves. A node is a leaf when every tight operator is ordered against every other operator: what
is live across each of them is then the same in every schedule of the node, branching cannot
raise its bound, and a leaf at the top of the heap ends the search. Its bound is exact often
enough to matter: the covering counts each stretch a tensor spends off chip between two uses
(``mappers/bounds.py``), and on AmoebaNet-D at M_R the leaf where the search ends (876 nodes)
has a schedule that costs exactly its bound (``divide_and_conquer`` solves it with the order
fixed). An exact chain ILP at leaves, tried as a refinement, never raised one there.

Work is counted in nodes, not seconds, so a run gives the same bound on a loaded machine; the
wall clock is only a safety net. A child recomputes only the operators whose term the new edge
can change: those whose ancestors or descendants change, or for which it joins two operators
free to run on either side (``_unchanged``); the rest are the parent's.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

from mappers.bounds import (
    Precedence,
    Term,
    bound_from_terms,
    op_slack_and_term,
    tight_ops,
)
from mappers.memory_problem import MemoryProblem

SEARCH_NODES_PER_S = 20  # nodes per nominal second of a budget; a design choice: 1,000 nodes took 40 CPU s on
# PNASNet-5 and 55 on NASNet-A at M_R (activations), so a nominal second is about a CPU second

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


def _unchanged(parent: Precedence, child: Precedence, o: int, edge: tuple[int, int]) -> bool:
    """The term of ``o`` depends on its ancestors, descendants and the direct edges among operators
    free on either side of it (``bounds.min_live_bytes``); an edge with an end outside that free
    set either changes ``o``'s ancestors or descendants or only adds a row the LP always meets
    (from an ancestor of ``o``, or to a descendant)."""
    a, b = edge
    return (parent.ancestors[o] == child.ancestors[o] and parent.descendants[o] == child.descendants[o]
            and not (parent.unordered(o, a) and parent.unordered(o, b)))


def order_search_bound(problem: MemoryProblem, capacity_bytes: int, *, max_nodes: int,
                       upper_bytes: int | None = None, cover_s: float = 0.5,
                       wall_limit_s: float = 120.0, prefer_order: list[int] | None = None) -> SearchBound:
    """The smallest bound over the open nodes after at most ``max_nodes`` children (module docstring);
    ``prefer_order`` (the plan behind ``upper_bytes``) completes a leaf into ``leaf_order``."""
    pb = problem
    deadline = time.perf_counter() + wall_limit_s
    tight = tight_ops(pb, capacity_bytes)
    root_prec = Precedence.of(pb)
    root_info = {o: op_slack_and_term(pb, capacity_bytes, o, root_prec) for o in tight}

    def bound_of(info: dict[int, tuple[int, Term | None]], prec: Precedence) -> int:
        return bound_from_terms(pb, [t for _, t in info.values() if t is not None], cover_s, prec).bytes

    # heap entries: (bound, tie, edges, info, is a leaf); ties go to the deeper node (fewer open nodes)
    heap = [(bound_of(root_info, root_prec), 0, (), root_info, False)]
    nodes = tie = 0
    capped = False
    while True:
        low, _, edges, info, leaf = heap[0]
        if leaf or (upper_bytes is not None and low >= upper_bytes) or nodes + 2 > max_nodes:  # 2 per expansion
            break
        if time.perf_counter() > deadline:
            capped = True
            break
        heapq.heappop(heap)
        prec = Precedence.of(pb, edges)
        pair = _branch_pair(pb, prec, info)
        if pair is None:  # every tight operator's place is fixed: branching cannot raise this node
            heapq.heappush(heap, (low, tie, edges, info, True))
            continue
        for edge in (pair, pair[::-1]):
            child_edges = edges + (edge,)
            child = Precedence.of(pb, child_edges)
            child_info = {o: info[o] if _unchanged(prec, child, o, edge) else op_slack_and_term(pb, capacity_bytes, o, child)
                          for o in tight}
            nodes += 1
            tie -= 1
            heapq.heappush(heap, (max(low, bound_of(child_info, child)), tie, child_edges, child_info, False))
    low, _, edges, _, leaf = heap[0]
    return SearchBound(low, nodes, len(heap), upper_bytes is not None and low >= upper_bytes, capped, leaf,
                       Precedence.of(pb, edges).linear_extension(prefer_order) if leaf else None)


def _branch_pair(pb: MemoryProblem, prec: Precedence,
                 info: dict[int, tuple[int, Term | None]]) -> tuple[int, int] | None:
    for o in sorted(info, key=lambda o: (info[o][0], o)):
        free = [u for u in range(pb.n_ops) if prec.unordered(o, u)]
        if free:
            return o, max(free, key=lambda u: (pb.working_set_bytes(u), -u))
    return None

