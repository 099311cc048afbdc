"""One CP-SAT model per tile candidate: binding, stage, deferral and P1 of every 1-pass Einsum,
exactly optimal under the steady-state model (``model.model_latency_cycles``), with the buffer
constraint of the simulated stream (room to prefetch the next K/V tile and Q group)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from accelsim.engines.spatial import AttentionPlan, useful_elements
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.mapping import Mapping
from mappers.fusemax.model import (
    compute_pj,
    energy_coeffs,
    model_costs,
    model_energy_pj,
)
from mappers.fusemax.published import one_pass_table


@dataclass(frozen=True)
class OptimizeResult:
    plan: AttentionPlan
    objective: str
    value: float  # latency cycles, energy pJ or DRAM bytes (the model's estimate)
    latency_cycles: float
    dram_bytes: float
    status: str
    best_bound: float  # the final (tie-breaking) solve's bound on its objective
    gap: float  # of the final solve: |objective - bound| / |objective|
    primary_bound: float = math.nan  # the first solve's bound on the objective asked for
    model_optimum: float = math.nan  # best model value over all tile candidates (CP-SAT, exact)
    simulated_latency_cycles: float = math.nan  # of the returned plan
    source: str = "optimizer"  # "optimizer", "optimizer (P1 varied)" or "published"

    mapping: Mapping | None = None  # the returned plan as the Mapping the engine replays


def solve(hw, s, objective, n_stages, p0, m0, time_limit_s, prefetch: bool = True):
    """The exact model optimum for tile ``p0 x m0`` (an ``optimize.OptimizeResult``)."""
    from ortools.sat.python import cp_model


    w = hw.word_bytes
    n_pt, n_mt = math.ceil(s.p / p0), math.ceil(s.m / m0)
    tb = one_pass_table(s, m0)
    cost = model_costs(tb, hw, s, p0, m0)
    names = tb.names
    final = tb.final
    S = n_stages
    m = cp_model.CpModel()
    on = {(e, u): m.NewBoolVar(f"on_{e}_{u}") for e in names for u in cost[e]}
    st = {(e, k): m.NewBoolVar(f"st_{e}_{k}") for e in names for k in range(S)}
    deferred = {e: (m.NewBoolVar(f"def_{e}") if e in tb.deferrable else 0) for e in names}
    stage = {}
    for e in names:
        m.AddExactlyOne([on[e, u] for u in cost[e]])
        m.AddExactlyOne([st[e, k] for k in range(S)])
        stage[e] = sum(k * st[e, k] for k in range(S))
    pos = {e: stage[e] + S * deferred[e] for e in names}
    same = {}
    for prod, cons in tb.deps.items():
        for c in cons:
            eq = m.NewBoolVar(f"same_{prod}_{c}")
            units = [u for u in ("2d", "1d") if (prod, u) in on and (c, u) in on]
            # eq == 1 iff both on the same unit
            both = []
            for u in units:
                b = m.NewBoolVar(f"both_{prod}_{c}_{u}")
                m.AddBoolAnd([on[prod, u], on[c, u]]).OnlyEnforceIf(b)
                m.AddBoolOr([on[prod, u].Not(), on[c, u].Not()]).OnlyEnforceIf(b.Not())
                both.append(b)
            if both:
                m.Add(sum(both) == eq)
            else:
                m.Add(eq == 0)
            same[prod, c] = eq
            if (prod, c) in tb.streaming:
                m.Add(pos[prod] <= pos[c])
            else:
                m.Add(pos[prod] <= pos[c]).OnlyEnforceIf(eq)
                m.Add(pos[prod] + 1 <= pos[c]).OnlyEnforceIf(eq.Not())
    # loop-carried: RD(t) -> SPD(t+1), RNV(t) -> SPNV(t+1), RM(t) -> PRM(t+1)
    for prod, c in sorted(tb.carried):
        m.Add(pos[prod] <= pos[c] + S)
    # AV only after RD and RNV of the last tile: same stage order is handled by the cost model
    # stage loads per unit (AV excluded: once per query tile)
    x = {}
    T = [m.NewIntVar(0, 10 ** 9, f"T{k}") for k in range(S)]
    for k in range(S):
        for u in ("2d", "1d"):
            terms = []
            for e in names:
                if e == final or (e, u) not in on:
                    continue
                v = m.NewBoolVar(f"x_{e}_{k}_{u}")
                m.AddBoolAnd([on[e, u], st[e, k]]).OnlyEnforceIf(v)
                m.AddBoolOr([on[e, u].Not(), st[e, k].Not()]).OnlyEnforceIf(v.Not())
                x[e, k, u] = v
                terms.append(cost[e][u] * v)
            m.Add(T[k] >= sum(terms))
    # AV runs once per query tile, added to its stage on its unit
    av_extra = m.NewIntVar(0, 10 ** 9, "av_extra")
    for k in range(S):
        for u in cost[final]:
            load = sum(cost[e][u] * x[e, k, u] for e in names if (e, k, u) in x)
            both = m.NewBoolVar(f"av_{k}_{u}")
            m.AddBoolAnd([on[final, u], st[final, k]]).OnlyEnforceIf(both)
            m.AddBoolOr([on[final, u].Not(), st[final, k].Not()]).OnlyEnforceIf(both.Not())
            m.Add(av_extra >= load + cost[final][u] - T[k]).OnlyEnforceIf(both)
    per_query_tile = m.NewIntVar(0, (n_mt + 1) * sum(max(c.values()) for c in cost.values()), "per_qtile")
    m.Add(per_query_tile == n_mt * sum(T) + av_extra)
    # staging of tile tensors that cross arrays, and P1
    crossing = []
    for t in sorted(tb.tile_tensors):
        c = m.NewBoolVar(f"cross_{t}")
        m.AddBoolOr([same[t, cns].Not() for cns in tb.deps[t]]).OnlyEnforceIf(c)
        m.AddBoolAnd([same[t, cns] for cns in tb.deps[t]]).OnlyEnforceIf(c.Not())
        crossing.append(c)
    kv = m0 * (s.e + s.f) * w
    base_query = (s.e + s.f + 2) * w
    stage_query = 2 * m0 * w
    p1 = m.NewIntVar(1, n_pt, "p1")
    n_cross = m.NewIntVar(0, len(tb.tile_tensors), "n_cross")
    m.Add(n_cross == sum(crossing))
    prod_var = m.NewIntVar(0, n_pt * len(tb.tile_tensors), "p1_x_cross")
    m.AddMultiplicationEquality(prod_var, [p1, n_cross])
    # the buffer: what one_pass_stream_buffer_bytes (prefetch=True: one more Q group and K/V
    # tile, so the simulated stream never waits for space) or one_pass_buffer_bytes counts
    q_row = s.e * w if prefetch else 0
    n_kv = 2 if prefetch else 1
    m.Add(p0 * ((base_query + q_row) * p1 + stage_query * prod_var) + n_kv * kv <= hw.buffer_bytes)
    passes = m.NewIntVar(1, n_pt, "passes")
    m.AddDivisionEquality(passes, n_pt + p1 - 1, p1)
    # everything per (batch, head): every head runs the same plan
    bh = s.b * s.h
    fixed_bytes = (s.p * s.e + s.p * s.f) * w
    kv_bytes_per_pass = s.m * (s.e + s.f) * w
    worst_tile = sum(max(c.values()) for c in cost.values())
    # DRAM bytes per cycle as a rational (CP-SAT is integer): the closest fraction with
    # denominator <= 1000, relative error < 1e-3 / bytes_per_cycle (< 1e-5 for the presets).
    # Only the model's estimate sees it; the final choice is re-simulated at the exact rate.
    bpc = Fraction(hw.dram.bytes_per_cycle(hw.clock_hz)).limit_denominator(1000)
    ub = n_pt * (n_mt + 1) * worst_tile + math.ceil((fixed_bytes + kv_bytes_per_pass * n_pt) / bpc) + 1
    if ub * max(bpc.numerator, bpc.denominator) > 2 ** 62:
        raise InfeasibleError("problem too large for exact integer arithmetic", field="shape")
    compute = m.NewIntVar(0, ub, "compute")
    m.Add(compute == n_pt * per_query_tile)
    lat = m.NewIntVar(0, ub, "latency")
    m.Add(lat >= compute)
    # lat * bpc >= bytes  <=>  lat * num >= bytes * den
    m.Add(lat * bpc.numerator >= (fixed_bytes + kv_bytes_per_pass * passes) * bpc.denominator)
    dram_pj, staged_pj = energy_coeffs(hw, s)
    # energy (whole layer, pJ, terms that depend on the plan): K/V passes, staging of crossing
    # tile tensors, compute by binding. CP-SAT needs integers: every coefficient is expressed in
    # units of ``quantum`` pJ, chosen so the largest possible total is ~1e12 units (rounding
    # error <= 0.5 quantum per coefficient, i.e. ~1e-12 of the total).
    n_mt_ = n_mt
    comp = {(e, u): compute_pj(tb.op(e), u, hw) * bh * useful_elements(tb.einsums[e], s, n_mt_)
            for e in names for u in cost[e]}
    e_max = (dram_pj * kv_bytes_per_pass * bh * n_pt + staged_pj * len(tb.tile_tensors)
             + sum(max(comp[e, u] for u in cost[e]) for e in names))
    quantum = max(e_max, 1.0) / 1e12
    energy_expr = (round(dram_pj * kv_bytes_per_pass * bh / quantum) * passes
                   + round(staged_pj / quantum) * n_cross
                   + sum(round(comp[e, u] / quantum) * on[e, u] for e in names for u in cost[e]))
    primary, secondary = {"latency": (lat, passes), "dram": (passes, lat), "energy": (energy_expr, lat)}[objective]
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    # lexicographic: the objective asked for, then the other (latency or traffic) at no cost to it
    m.Minimize(primary)
    status = solver.Solve(m)
    bound1 = math.nan
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound1 = solver.BestObjectiveBound()
        first_status = status
        m.Add(primary <= int(round(solver.ObjectiveValue())))
        m.Minimize(secondary)
        status = solver.Solve(m)
        if status == cp_model.OPTIMAL and first_status != cp_model.OPTIMAL:
            status = first_status
    if status == cp_model.MODEL_INVALID:  # a bug in this model, not a user error
        raise RuntimeError(f"CP-SAT model invalid: {m.Validate()}")
    if status == cp_model.UNKNOWN:
        raise AccelsimError(f"tile {p0}x{m0}: CP-SAT found no solution within the time limit of {time_limit_s} s "
                            "(not shown infeasible); raise the time limit or fix the tile", field="time_limit")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        one = p0 * (base_query + q_row) + n_kv * kv
        room = " with room to prefetch the next Q group and K/V tile" if prefetch else ""
        raise InfeasibleError(f"tile {p0}x{m0}: even one query tile of {p0} queries plus a K/V tile of {m0} keys"
                              f"{room} needs {one} bytes, the buffer has {hw.buffer_bytes}",
                              field="hardware.global_buffer")
    binding = {e: next(u for u in cost[e] if solver.Value(on[e, u])) for e in names}
    stage_of = {e: next(k for k in range(S) if solver.Value(st[e, k])) for e in names}
    deferred_set = frozenset(e for e in tb.deferrable if solver.Value(deferred[e]))
    order = tb.names  # topological, so within-stage order is legal
    stages_t = tuple(tuple(e for e in order if stage_of[e] == k) for k in range(S))
    plan = AttentionPlan("optimized", "1pass", p0, m0, solver.Value(p1), binding,
                         tuple(st_ for st_ in stages_t if st_), deferred_set, interleaved=True, table=tb)
    # renumbering empty stages away keeps positions' order, so the schedule stays legal
    lat_v = float(solver.Value(lat)) * bh
    dram_v = float(fixed_bytes + kv_bytes_per_pass * solver.Value(passes)) * bh
    value = {"latency": lat_v, "dram": dram_v, "energy": model_energy_pj(plan, hw, s)}[objective]
    obj, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()  # the final (tie-break) solve
    gap = abs(obj - bound) / max(abs(obj), 1e-9)
    return OptimizeResult(plan, objective, value, lat_v, dram_v, solver.StatusName(status), bound, gap,
                          primary_bound=bound1)

