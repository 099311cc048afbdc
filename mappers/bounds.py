"""Order-free lower bounds on non-compulsory bytes, valid for every schedule, allocation and spill plan.

Why: a time-limited solver's own bound is often weak (ViT-B/16 at M_R: 52% of the optimum after
20 s), and divide and conquer has no bound of its own. This one needs no solve of the mapping
problem; it composes across pieces of the graph, so it bounds divide-and-conquer results too.

Argument, per operator ``o``. In any schedule, when ``o`` runs its working set ``ws(o)`` (inputs
and outputs) is on chip, so at most ``capacity - ws(o)`` bytes of other tensors are. The ops run
before ``o`` form a down-closed set ``D`` holding every ancestor of ``o`` and no descendant; the
other tensors *live across* ``o`` are those made in ``D`` (a source: read in ``D``) and read
after ``o``. The fewest such bytes over all ``D`` (``min_live``) is a minimum-closure problem, an
LP with an integral optimum (difference constraints), solved here with HiGHS. At least
``min_live - (capacity - ws(o))`` live bytes are off chip at ``o``; an intermediate off chip
while live was spilled and will be reloaded (2 bytes of traffic per byte), a source read before
and after costs a reload (1 per byte). So ``lb(o) = factor * max(0, deficit)``, with factor 2
unless some source could be live across ``o``.

Summing: a tensor's traffic is counted once if the operators summed have pairwise disjoint sets of
tensors that *could* be live across them (``candidates``), so the sum over such a set is a bound
(chosen greedily, largest first). Each term is the bound of a one-operator piece with its
entry state left free, which is why the sum is valid for any way of cutting the graph.

Covering (tighter, and what is reported): let ``z[a] = 1`` if tensor ``a`` is ever off chip while
live in a given plan; that plan costs at least ``sum c[a] size[a] z[a]`` (``c`` = 2 for an
intermediate, 1 for a source) and, at each operator, the off-chip live bytes come from its
candidates, so ``sum_{a in cand(o)} size[a] z[a] >= deficit(o)``. The minimum of this covering
problem over ``z`` is a bound. ``_covering_bound`` refines ``z`` per stretch between two uses of a
tensor where the precedence says which stretch an operator falls in (each stretch off chip costs
its own reload). CP-SAT's proven bound on it (deterministic budget, usually solved at once) is
used, and never less than the disjoint sum, which is one of its dual solutions.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from mappers.memory_problem import MemoryProblem

Term = tuple[int, int, set[int]]  # (bound bytes, operator, candidate tensors) of one operator


@dataclass(frozen=True)
class Precedence:
    """Which operators must run before which: the graph's own dependences, optionally with extra
    edges. Every argument of this module holds for every schedule that respects ``preds``, so a
    bound computed with extra edges holds for the schedules that respect them (``mappers/order_bounds.py``
    uses that to branch on the relative order of a few operators)."""

    preds: tuple[frozenset[int], ...]
    ancestors: tuple[frozenset[int], ...]
    descendants: tuple[frozenset[int], ...]
    extra: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, problem: MemoryProblem, extra_edges: tuple[tuple[int, int], ...] = ()) -> "Precedence":
        """The problem's precedence plus ``(before, after)`` edges; raises ValueError on a cycle."""
        if not extra_edges:
            return cls(problem.preds, problem.ancestors, problem.descendants)
        n = problem.n_ops
        preds = [set(p) for p in problem.preds]
        for a, b in extra_edges:
            preds[b].add(a)
        topo = topological_order(preds)
        if len(topo) != n:
            raise ValueError("the extra precedence edges make a cycle")
        anc: list[frozenset[int]] = [frozenset()] * n
        for o in topo:
            acc: set[int] = set()
            for p in preds[o]:
                acc.add(p)
                acc |= anc[p]
            anc[o] = frozenset(acc)
        desc: list[set[int]] = [set() for _ in range(n)]
        for o in range(n):
            for a in anc[o]:
                desc[a].add(o)
        return cls(tuple(frozenset(p) for p in preds), tuple(anc), tuple(frozenset(d) for d in desc),
                   tuple(extra_edges))

    def same_term_as_graph(self, problem: MemoryProblem, o: int) -> bool:
        """True if ``o``'s term is the one the graph's own precedence gives: ``o`` has the same
        ancestors and descendants, and no extra edge joins two operators free to run on either
        side of ``o``. The term depends only on those (``candidates``, ``min_live_bytes``)."""
        if self.ancestors[o] != problem.ancestors[o] or self.descendants[o] != problem.descendants[o]:
            return False
        fixed = self.ancestors[o] | self.descendants[o] | {o}
        return all(a in fixed or b in fixed for a, b in self.extra)

    def unordered(self, o: int, u: int) -> bool:
        """``u`` may run before or after ``o`` (neither is an ancestor of the other)."""
        return u != o and u not in self.ancestors[o] and u not in self.descendants[o]

    def linear_extension(self, prefer: list[int] | None = None) -> list[int]:
        """A schedule respecting this precedence: of the ready operators, the earliest in ``prefer``
        (a known good schedule; default the graph's order) first."""
        return topological_order(self.preds, prefer)


def topological_order(preds, prefer: list[int] | None = None) -> list[int]:
    """Operators in an order that respects ``preds[o]`` (the operators before ``o``): of the ready
    ones, the earliest in ``prefer`` (default: the smallest id) first. Shorter than ``len(preds)``
    if the edges make a cycle."""
    rank = {o: k for k, o in enumerate(prefer)} if prefer is not None else None
    key = (lambda o: (rank[o], o)) if rank is not None else (lambda o: (o, o))
    waiting = [len(p) for p in preds]
    succs: list[list[int]] = [[] for _ in waiting]
    for b, ps in enumerate(preds):
        for a in ps:
            succs[a].append(b)
    ready = [key(o) for o, left in enumerate(waiting) if not left]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        o = heapq.heappop(ready)[1]
        order.append(o)
        for s in succs[o]:
            waiting[s] -= 1
            if not waiting[s]:
                heapq.heappush(ready, key(s))
    return order


@dataclass
class StaticBound:
    bytes: int
    per_op: dict[int, int]  # operator -> its bound, for the operators summed


def candidates(problem: MemoryProblem, o: int, prec: Precedence | None = None) -> set[int]:
    """Tensors outside ``ws(o)`` that some schedule (respecting ``prec``) keeps live across ``o``."""
    pb = problem
    prec = prec or Precedence.of(pb)
    ws = set(pb.op_inputs[o]) | set(pb.op_outputs[o])
    after_ok = lambda c: c != o and c not in prec.ancestors[o]
    before_ok = lambda u: u != o and u not in prec.descendants[o]
    out = set()
    for a in range(pb.n_tensors):
        if a in ws or not pb.consumers[a]:
            continue
        p = pb.producer[a]
        if p is not None:
            if before_ok(p) and any(after_ok(c) for c in pb.consumers[a]):
                out.add(a)
        elif any(before_ok(c1) and after_ok(c2) and c1 != c2 for c1 in pb.consumers[a] for c2 in pb.consumers[a]):
            out.add(a)
    return out


def min_live_bytes(problem: MemoryProblem, o: int, cand: set[int], prec: Precedence | None = None) -> int:
    """Fewest bytes of ``cand`` live across ``o`` over all sets of operators that can run before it
    (down-closed under ``prec``)."""
    import math

    import numpy as np

    from mappers.milp_highs import new_highs as _new_highs

    pb = problem
    prec = prec or Precedence.of(pb)
    ops = [u for u in range(pb.n_ops) if prec.unordered(o, u)]
    col = {u: i for i, u in enumerate(ops)}  # "done before o" in [0, 1]; ancestors are 1, o and descendants 0
    tens = sorted(cand)
    ell = {a: len(ops) + i for i, a in enumerate(tens)}  # "live across o" in [0, 1]
    n = len(ops) + len(tens)

    def done(u: int) -> tuple[int | None, int]:
        """(column, constant): a free column, or a fixed 0/1."""
        return (col[u], 0) if u in col else (None, 1 if u in prec.ancestors[o] else 0)

    rows: list[tuple[dict[int, float], float]] = []  # sum(coef * x) >= rhs

    def geq(terms: list[tuple[tuple[int | None, int], float]], rhs: float) -> None:
        row: dict[int, float] = {}
        for (c, const), coef in terms:
            if c is None:
                rhs -= coef * const
            else:
                row[c] = row.get(c, 0.0) + coef
        row = {c: v for c, v in row.items() if v}
        if row:
            rows.append((row, rhs))

    for u in ops:  # down-closed: done(p) - done(u) >= 0
        for p in prec.preds[u]:
            geq([(done(p), 1.0), (done(u), -1.0)], 0.0)
    for a in tens:  # live(a) >= done(maker) - done(consumer)
        p = pb.producer[a]
        makers = [p] if p is not None else list(pb.consumers[a])
        for mk in makers:
            for c in pb.consumers[a]:
                if c != o and c != mk:
                    geq([((ell[a], 0), 1.0), (done(mk), -1.0), (done(c), 1.0)], 0.0)
    h = _new_highs()
    h.setOptionValue("presolve", "off")  # see mappers/milp.py: HiGHS 1.16's presolve is not trusted here
    h.addVars(n, np.zeros(n), np.ones(n))
    cost = np.zeros(n)
    for a in tens:
        cost[ell[a]] = pb.tensor_bytes[a]
    if n:
        h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    if rows:  # one call: row-by-row addRow was most of the time of this function
        starts = np.cumsum([0] + [len(r) for r, _ in rows[:-1]], dtype=np.int32)
        index = np.fromiter((c for r, _ in rows for c in r), dtype=np.int32)
        value = np.fromiter((v for r, _ in rows for v in r.values()), dtype=float)
        h.addRows(len(rows), np.array([rhs for _, rhs in rows], dtype=float), np.full(len(rows), math.inf),
                  len(index), starts, index, value)
    h.run()
    # the LP is integral (difference constraints); round down so float noise never overstates it
    return int(math.floor(h.getInfo().objective_function_value + 1e-6))


def op_slack_and_term(pb: MemoryProblem, capacity_bytes: int, o: int,
                      prec: Precedence) -> tuple[int, Term | None]:
    """``(slack bytes, term)``: the room ``o``'s working set leaves minus the fewest bytes that must be
    live across it (negative: a deficit), and the term it adds to the bound (None without a deficit).
    The search of ``mappers/order_search.py`` branches on the operator with the least slack."""
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


def static_lower_bound(problem: MemoryProblem, capacity_bytes: int, cover_s: float = 2.0,
                       prec: Precedence | None = None, ops: list[int] | None = None,
                       graph_terms: dict | None = None) -> StaticBound:
    """The larger of the covering bound and the disjoint sum of per-operator bounds (module docstring),
    for the schedules respecting ``prec``. ``ops`` limits the terms to those operators (a bound
    still, with fewer terms; ``tight_ops`` lists the only ones that can have a term).
    ``graph_terms`` caches terms computed with the graph's own precedence (filled here when ``prec``
    has no extra edges, reused where ``Precedence.same_term_as_graph`` says they cannot differ)."""
    return bound_from_terms(problem, op_terms(problem, capacity_bytes, prec, ops, graph_terms), cover_s, prec)


def op_terms(problem: MemoryProblem, capacity_bytes: int, prec: Precedence | None = None,
             ops: list[int] | None = None, graph_terms: dict | None = None) -> list[tuple[int, int, set[int]]]:
    """Per operator with a positive bound: ``(bound bytes, operator, candidates)`` (see ``static_lower_bound``)."""
    pb = problem
    prec = prec or Precedence.of(pb)
    terms: list[tuple[int, int, set[int]]] = []
    for o in (range(pb.n_ops) if ops is None else ops):
        if graph_terms is not None and o in graph_terms and prec.same_term_as_graph(pb, o):
            term = graph_terms[o]
        else:
            term = op_slack_and_term(pb, capacity_bytes, o, prec)[1]
            if graph_terms is not None and not prec.extra:
                graph_terms[o] = term
        if term is not None:
            terms.append(term)
    return terms


def bound_from_terms(problem: MemoryProblem, terms: list[tuple[int, int, set[int]]], cover_s: float,
                     prec: Precedence | None = None) -> StaticBound:
    """The disjoint sum of terms (greedy, largest first) or, if larger, the covering bound, for the
    schedules respecting ``prec`` (the terms' own precedence; default the graph's)."""
    pb = problem
    used: set[int] = set()
    per_op: dict[int, int] = {}
    for lb, o, cand in sorted(terms, key=lambda x: (-x[0], x[1])):
        if cand & used:
            continue
        used |= cand
        per_op[o] = lb
    disjoint = sum(per_op.values())
    if len(terms) > 1 and cover_s > 0:
        return StaticBound(max(disjoint, _covering_bound(pb, terms, cover_s, prec or Precedence.of(pb))), per_op)
    return StaticBound(disjoint, per_op)


def tight_ops(problem: MemoryProblem, capacity_bytes: int) -> list[int]:
    """Operators whose candidates could overflow the room their working set leaves; extra precedence
    only shrinks the candidates, so no other operator can have a term under any ``Precedence``."""
    pb = problem
    return [o for o in range(pb.n_ops)
            if sum(pb.tensor_bytes[a] for a in candidates(pb, o)) > capacity_bytes - pb.working_set_bytes(o)]


def reuse_segment(problem: MemoryProblem, a: int, o: int, prec: Precedence) -> int | None:
    """Which stretch between uses of tensor ``a`` operator ``o`` falls in, if ``prec`` decides it: the
    number of ``a``'s consumers that run before ``o`` (None if some consumer may run on either side)."""
    before = 0
    for c in problem.consumers[a]:
        if c in prec.ancestors[o]:
            before += 1
        elif c not in prec.descendants[o]:
            return None
    return before


def _covering_bound(problem: MemoryProblem, terms: list[tuple[int, int, set[int]]], time_limit_s: float,
                    prec: Precedence) -> int:
    """Proven dual bound of the covering problem, counted per stretch between uses.

    ``y[a, k]`` = 1 if tensor ``a`` is off chip while live somewhere between its ``k``-th and
    ``k+1``-th use (in the plan's order): each such stretch ends in a reload (the next use needs
    it on chip), so costs ``size``; an intermediate ever off chip was also spilled once (``s[a]``,
    ``size``). At operator ``o`` the off-chip live bytes cover its deficit; a tensor there falls in
    the stretch ``reuse_segment`` gives when ``prec`` decides it, else in some stretch (``w[a] <=
    sum_k y[a, k]``). Every plan gives a solution costing at most what it moves. With one stretch
    per tensor this is the per-tensor covering (cost 2 size for an intermediate, size for a
    source); it is larger where a tensor must leave the chip twice between different uses, which
    a fixed order shows (AmoebaNet-D at M_R)."""
    import math

    from mappers import milp

    pb = problem
    m = milp.LinearModel()
    y: dict[tuple[int, int], int] = {}
    w: dict[int, int] = {}
    spill: dict[int, int] = {}

    def stretch(a: int, k: int | None) -> int:
        if k is not None:
            if (a, k) not in y:
                y[a, k] = m.var(f"y[{a},{k}]")
                m.objective[y[a, k]] = pb.tensor_bytes[a]
                if not pb.is_source(a):
                    if a not in spill:
                        spill[a] = m.var(f"s[{a}]")
                        m.objective[spill[a]] = pb.tensor_bytes[a]
                    m.add({spill[a]: 1, y[a, k]: -1}, ">=", 0)
            return y[a, k]
        if a not in w:
            w[a] = m.var(f"w[{a}]")
        return w[a]

    for lb, o, cand in terms:
        factor = 1 if any(pb.is_source(a) for a in cand) else 2
        deficit = lb // factor
        row: dict[int, int] = {}
        for a in sorted(cand):
            v = stretch(a, reuse_segment(pb, a, o, prec))
            row[v] = row.get(v, 0) + pb.tensor_bytes[a]
        m.add(row, ">=", deficit)
    first_use = lambda a: 1 if pb.is_source(a) else 0  # a source is live only after its first use
    for a, v in w.items():  # off chip in some stretch: at least one of them is paid
        row = {v: -1}
        for k in range(first_use(a), len(pb.consumers[a])):
            row[stretch(a, k)] = 1
        m.add(row, ">=", 0)
    # load-independent: a deterministic budget; the wall clock (milp's safety net) only stops a
    # pathologically loaded run
    res = milp.solve(m, "cpsat", time_limit_s, None, 1, 0)
    bound = res.objective if res.status == "optimal" else res.best_bound
    return max(0, math.floor(bound + 1e-6)) if bound is not None and math.isfinite(bound) else 0
