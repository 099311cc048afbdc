"""The optimizer: CP-SAT per tile candidate (``cpsat.solve``), then the near-optimal plans and the
published one simulated, and the fastest simulated returned (as a plan and as a Mapping)."""
from __future__ import annotations

import math
from dataclasses import replace

from accelsim.engines.spatial import AttentionPlan, simulate_plan
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape
from mappers.fusemax.cpsat import OptimizeResult, solve
from mappers.fusemax.model import model_latency_cycles, model_value
from mappers.fusemax.published import plan_mapping, published_p1, published_plan


def _tile_candidates(hw: SpatialAccelerator, s: AttentionShape, tiles: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
    if tiles:
        return tiles
    cols, rows = hw.array_2d.cols, hw.array_2d.rows
    p_opts = sorted({min(cols, s.p), min(cols // 2 or 1, s.p)})
    m_opts = sorted({min(rows, s.m), min(rows // 2 or 1, s.m)})
    return [(p, m) for p in p_opts for m in m_opts]



# so a near-tie in the model is not a tie in the simulation. 2%: the largest fill/drain share
# seen between the model and the simulation at the published configurations (NOTES.md).
NEAR_TIE = 0.02


def optimize(hw: SpatialAccelerator, s: AttentionShape, objective: str = "latency", stages: int = 4,
             tiles: list[tuple[int, int]] | None = None, time_limit_s: float = 10.0) -> OptimizeResult:
    """Binding, schedule, tiling and P1 for the 1-pass cascade.

    Two steps. (1) Per tile candidate, CP-SAT finds the plan that is exactly optimal under the
    steady-state model (``model_latency_cycles``), with a buffer constraint that leaves room to
    prefetch the next K/V tile and the next group's Q (``one_pass_stream_buffer_bytes``, what
    the simulation needs not to stall). (2) The near-optimal plans (within ``NEAR_TIE`` of the
    model optimum for latency, equal objective otherwise), their P1 set by the artifact's rule,
    and, for the latency objective, the published plan are simulated; the fastest simulated
    plan is returned. So the returned plan is never slower in simulation than the published
    one (it is among the candidates)."""
    if objective not in ("latency", "energy", "dram"):
        raise AccelsimError(f"unknown objective {objective!r}", field="objective", allowed=["latency", "energy", "dram"])
    if not (isinstance(time_limit_s, (int, float)) and math.isfinite(time_limit_s) and time_limit_s > 0):
        raise AccelsimError(f"must be a positive number of seconds, got {time_limit_s!r}", field="time_limit")
    solved: list[OptimizeResult] = []
    reasons: list[str] = []
    for prefetch in (True, False):  # without prefetch room only if nothing fits with it
        for p0, m0 in _tile_candidates(hw, s, tiles):
            try:
                solved.append(solve(hw, s, objective, stages, p0, m0, time_limit_s, prefetch))
            except InfeasibleError as err:
                reasons.append(str(err))
        if solved:
            break
    if not solved:
        raise InfeasibleError("no tiling fits: " + "; ".join(dict.fromkeys(reasons)),
                              field="hardware.global_buffer.capacity_bytes")
    optimum = min(r.value for r in solved)
    tol = NEAR_TIE if objective == "latency" else 0.0
    pool = [r for r in solved if r.value <= optimum * (1 + tol) + 1e-9]
    cands: list[tuple[AttentionPlan, str, OptimizeResult | None]] = [(r.plan, "optimizer", r) for r in pool]
    if objective == "latency":
        for r in pool:
            try:
                p1 = published_p1(r.plan, hw, s)
            except InfeasibleError:
                continue
            if p1 != r.plan.p1:
                cands.append((replace(r.plan, p1=p1), "optimizer (P1 varied)", None))
        try:
            design = "fusemax" if "exp" in hw.array_2d.ops else "cascade"
            cands.append((published_plan(design, hw, s), "published", None))
        except AccelsimError:
            pass
    scored = []
    for i, (plan, source, res) in enumerate(cands):
        sim = simulate_plan(plan, hw, s)
        scored.append((sim.latency_cycles, sum(sim.traffic.values()), i, plan, source, res))
    lat_sim, dram_sim, _, plan, source, res = min(scored, key=lambda t: t[:3])
    if res is None:  # a variant or the published plan: its model numbers
        res = replace(solved[0], plan=plan, value=model_value(plan, hw, s, objective),
                      latency_cycles=model_latency_cycles(plan, hw, s), dram_bytes=dram_sim)
    return replace(res, model_optimum=optimum, simulated_latency_cycles=lat_sim, source=source,
                   mapping=plan_mapping(plan, hw, s))

