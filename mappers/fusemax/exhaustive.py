"""Exhaustive search (branch and bound) over the optimizer's space, for tests on small instances."""
from __future__ import annotations

import math
from dataclasses import replace

from accelsim.engines.spatial import (
    AttentionPlan,
    check_schedule,
    one_pass_stream_buffer_bytes,
)
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape
from mappers.fusemax.model import model_costs, model_latency_cycles
from mappers.fusemax.published import one_pass_table


def exhaustive(hw: SpatialAccelerator, s: AttentionShape, stages: int = 3, p0: int | None = None,
               m0: int | None = None) -> tuple[float, AttentionPlan]:
    """Minimum model latency over every binding, stage assignment, deferral and P1 (branch and
    bound over Einsums in topological order; exact, for small instances)."""
    p0 = p0 or min(hw.array_2d.cols, s.p)
    m0 = m0 or min(hw.array_2d.rows, s.m)
    tb = one_pass_table(s, m0)
    names = tb.names
    cost = model_costs(tb, hw, s, p0, m0)
    S = stages
    n_pt, n_mt = math.ceil(s.p / p0), math.ceil(s.m / m0)
    best = [math.inf, None]
    preds = {c: [p for p, cs in tb.deps.items() if c in cs] for c in names}
    carried = sorted((p, c) for p, c in tb.carried if p != c)
    assign: dict[str, tuple[str, int, int]] = {}

    def period_lb() -> int:
        loads = [[0, 0] for _ in range(S)]
        for e, (u, k, _) in assign.items():
            if e != tb.final:
                loads[k][0 if u == "2d" else 1] += cost[e][u]
        return sum(max(a) for a in loads)

    def finish():
        binding = {e: assign[e][0] for e in names}
        stage_lists = tuple(tuple(e for e in names if assign[e][1] == k) for k in range(S))
        deferred_set = frozenset(e for e in names if assign[e][2])
        plan = AttentionPlan("exhaustive", "1pass", p0, m0, 1, binding, tuple(x for x in stage_lists if x),
                             deferred_set, True, table=tb)
        # every P1 that fits
        try:
            check_schedule(plan)
        except AccelsimError:
            return
        for p1 in range(1, n_pt + 1):
            cand = replace(plan, p1=p1)
            if one_pass_stream_buffer_bytes(cand, s, hw.word_bytes) > hw.buffer_bytes:
                break
            v = model_latency_cycles(cand, hw, s)
            if v < best[0] - 1e-9:
                best[0], best[1] = v, cand

    def rec(i: int):
        if i == len(names):
            finish()
            return
        e = names[i]
        for u in cost[e]:
            for k in range(S):
                for d in ((0, 1) if e in tb.deferrable else (0,)):
                    p = k + S * d
                    ok = True
                    for pr in preds[e]:
                        pu, pk, pd = assign[pr]
                        ppos = pk + S * pd
                        if pu == u or (pr, e) in tb.streaming:
                            ok = ppos <= p
                        else:
                            ok = ppos < p
                        if not ok:
                            break
                    if not ok:
                        continue
                    if e == "SPD" and "RD" in assign:
                        pass
                    assign[e] = (u, k, d)
                    # loop-carried deps checked when both placed
                    lc_ok = True
                    for pr, c in carried:
                        if pr in assign and c in assign:
                            if assign[pr][1] + S * assign[pr][2] > assign[c][1] + S * assign[c][2] + S:
                                lc_ok = False
                    if lc_ok and s.b * s.h * n_pt * n_mt * period_lb() < best[0]:
                        rec(i + 1)
                    del assign[e]

    rec(0)
    if best[1] is None:
        raise InfeasibleError("no plan fits the buffer", field="hardware.global_buffer")
    return best[0], best[1]

