"""Schedules and budgets for COSMA: the minimum-peak order (budget M_P), a greedy order, M_R/M_H/M_P.

Why separate from the mapping model: the minimum-peak problem has no addresses and no spills
(only the order and which tensors are live), it is solved once per network to fix the budgets,
and the greedy order is a warm start and a baseline schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import InfeasibleError
from mappers import milp
from mappers.cosma_model import _tensor_ends, op_windows
from mappers.memory_problem import MemoryProblem, greedy_min_peak_order  # noqa: F401 (re-exported)

DEFAULT_SOLVER = "cpsat"  # faster of the back-ends on benchmarks/cosma_backends.py (results/cosma_backends.md)


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


BUDGETS = ("M_R", "M_H", "M_P")


def budgets(problem: MemoryProblem, *, solver: str = DEFAULT_SOLVER, time_limit_s: float = 60.0,
            threads: int = 2) -> dict:
    """M_R (largest single-operator working set), M_P (minimum peak over orders), M_H = (M_R + M_P) / 2.

    M_P comes from ``min_peak_schedule``; if that stops at the time limit the value is the best
    order found (an upper bound on the true minimum peak) and ``m_p_status`` says so.
    """
    default = list(range(problem.n_ops))
    greedy = greedy_min_peak_order(problem)
    hint = min((default, greedy), key=problem.peak_bytes)
    peak = min_peak_schedule(problem, solver=solver, time_limit_s=time_limit_s, hint_order=hint, threads=threads)
    m_r, m_p = problem.m_r, peak.peak_bytes
    return {"M_R": m_r, "M_P": m_p, "M_H": (m_r + m_p) // 2, "m_p_status": peak.status,
            "min_peak_order": peak.order}
