"""One attention layer on a spatial accelerator, simulated tile by tile from its plan.

``simulate_plan`` turns the plan (decoded from a Graph and a Mapping, ``plan.decode``) into
tile-level schedules on three units (``2d``, ``1d``, ``dram``), so latency comes out of the
overlap of the arrays, the DRAM stream and the buffer, not out of a sum of costs. Stages: the
tasks of one stage on the two arrays run concurrently; a stage starts when both arrays
finished the previous one (a statically scheduled lock-step pipeline); Einsums marked deferred
run in the next tile's stages (FuseMax overlaps RD/RNV of tile t with QK of t+1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from accelsim.engines.events import Task, extrapolate, run
from accelsim.engines.spatial.costs import (
    einsum_cycles,
    flat_row_bytes,
    flat_spill_fraction,
    one_pass_buffer_bytes,
    softmax_cycles_per_element,
    softmax_ops,
    staged_tile_tensors,
    three_pass_min_buffer_bytes,
    traffic_bytes,
    useful_elements,
)
from accelsim.engines.spatial.plan import AttentionPlan, check_schedule
from accelsim.engines.spatial.stream import (
    dram_cycles,
    extrapolated_latency,
    one_pass_stream,
)
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape

# Layers of up to this many tiles are simulated whole; longer ones are extended from truncated
# streams (``stream.extrapolated_latency``). The limit was set when the stream ran on simpy
# (~6,000 tiles/s); it stays so that every number of the FuseMax reproduction is unchanged.
FULL_SIM_MAX_TILES = 8192


@dataclass
class SimResult:
    latency_cycles: float
    busy_cycles: dict[str, float]
    einsum_cycles: dict[str, float]
    traffic: dict[str, float]
    buffer_bytes_used: int
    buffer_bytes_needed: int
    actions: dict[str, float]
    spill_fraction: float = 0.0


def simulate_one_pass(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                       full_sim_max_tiles: int | None = None) -> SimResult:
    full_sim_max_tiles = FULL_SIM_MAX_TILES if full_sim_max_tiles is None else full_sim_max_tiles
    check_schedule(plan)
    c = plan.cascade_table
    if plan.p0 > hw.array_2d.cols or plan.m0 > hw.array_2d.rows:
        raise AccelsimError(f"tile {plan.p0}x{plan.m0} exceeds the {hw.array_2d.rows}x{hw.array_2d.cols} array",
                            field="plan.p0/m0")
    w = hw.word_bytes
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    last_p0, last_m0 = s.p - (n_pt - 1) * plan.p0, s.m - (n_mt - 1) * plan.m0
    p1 = min(plan.p1, n_pt)
    need = one_pass_buffer_bytes(replace(plan, p1=1), s, w)
    used = one_pass_buffer_bytes(replace(plan, p1=p1), s, w)
    if used > hw.buffer_bytes:
        raise InfeasibleError(
            f"{p1} query tiles of {plan.p0} queries need {used} bytes of global buffer, only {hw.buffer_bytes} "
            f"exist (the smallest legal tile set, one query tile of {plan.p0} plus a K/V tile of {plan.m0} keys, "
            f"needs {need} bytes)", field="plan.p1")
    groups_full, rem = divmod(n_pt, p1)
    # one head's groups: full ones, then the remainder (with the possibly partial last query tile)
    head = [(p1, plan.p0)] * groups_full + ([(rem, last_p0)] if rem else [])
    if not rem:
        head[-1] = (p1, last_p0)
    n_units = s.b * s.h
    tiles = n_units * n_pt * n_mt
    extrapolated = tiles > full_sim_max_tiles
    if extrapolated:
        latency = extrapolated_latency(plan, hw, s, head, n_units, n_mt, last_m0)
    else:
        latency = one_pass_stream(plan, hw, s, head * n_units, n_mt, last_m0)
    # exact counts of work per unit (not extrapolated)
    per_einsum: dict[str, float] = {}
    actions: dict[str, float] = {}
    for e, ce in c.einsums.items():
        op, unit = ce.op, plan.binding[e]
        count = s.b * s.h * n_pt if ce.level == "final" else tiles
        per_einsum[e] = einsum_cycles(ce, unit, hw, s, plan.p0, plan.m0) * count
        array = hw.array_2d if unit == "2d" else hw.array_1d
        elements = s.b * s.h * useful_elements(ce, s, n_mt)
        acts = dict(array.cost(op).actions)
        if op == "exp" and "add" not in acts:
            for act, k in array.cost("sub").actions.items():  # the separate subtraction
                acts[act] = acts.get(act, 0) + k
        for act, k in acts.items():
            actions[act] = actions.get(act, 0.0) + k * elements
            if act == "mac":
                actions[f"mac@{unit}"] = actions.get(f"mac@{unit}", 0.0) + k * elements
    busy = {u: sum(c for e, c in per_einsum.items() if plan.binding[e] == u) for u in ("2d", "1d")}
    traffic = traffic_bytes(replace(plan, p1=p1), s, hw)
    busy["dram"] = dram_cycles(sum(traffic.values()), hw)
    if extrapolated:  # an exact lower bound the extrapolation may undercut near a DRAM/compute balance
        latency = max(latency, *busy.values())
    staged = staged_tile_tensors(plan) * 2 * s.b * s.h * s.m * s.p * w  # write + read per crossing tensor
    actions["buffer_read_bytes"] = sum(traffic.values()) + staged / 2
    actions["buffer_write_bytes"] = sum(traffic.values()) + staged / 2
    return SimResult(latency, busy, per_einsum, traffic, used, need, actions)



def simulate_three_pass(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> SimResult:
    """FLAT (fused, row blocks pipelined per query tile) or the unfused baseline (three phases).

    FLAT: per query tile, QK on the 2D array, the softmax on the 1D array and AV on the 2D array,
    software-pipelined (the 2D array runs QK of tile i+1 before AV of tile i) while DRAM streams
    the tile's share of the block's traffic. The buffer enters through the spill fraction of the
    score rows (``flat_spill_fraction``). Unfused: three phases one after the other, each a DRAM
    stream overlapped with its compute."""
    w = hw.word_bytes
    pes = hw.array_2d.rows * hw.array_2d.cols
    c = plan.cascade_table
    sm_ops = softmax_ops(c)
    if "mac" not in hw.array_2d.ops or not all(op in hw.array_1d.ops for op, _ in sm_ops):
        raise AccelsimError("the 3-pass cascade needs MACs on the 2D array and max/exp/add/div on the 1D array",
                            field="hardware")
    fixed = three_pass_min_buffer_bytes(plan, s, hw)
    if fixed > hw.buffer_bytes:
        raise InfeasibleError(
            f"{plan.design}: the {hw.array_2d.rows}x{hw.array_2d.cols} 2D array's double-buffered output tile plus "
            f"a {plan.p0}-query Q tile and a {plan.m0}-key K/V tile need {fixed} bytes of global buffer (they "
            f"cannot spill), only {hw.buffer_bytes} exist", field="hardware.global_buffer.capacity_bytes")
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    qk, av = (c.einsums[n] for n in c.macs)  # the score and output MACs, in cascade order
    qk_cyc = n_mt * math.ceil(plan.p0 / hw.array_2d.cols) * qk.factor(s)  # one query tile row of QK
    av_cyc = n_mt * math.ceil(plan.p0 / hw.array_2d.cols) * av.factor(s)
    sm_cyc = math.ceil(plan.p0 * s.m / hw.array_1d.cols) * softmax_cycles_per_element(hw, c)
    traffic = traffic_bytes(plan, s, hw)
    total_bytes = sum(traffic.values())
    rows_total = s.b * s.h * n_pt
    per_row_bytes = total_bytes / rows_total
    spill = flat_spill_fraction(plan, s, hw) if (plan.fused and plan.qk_onchip) else 0.0
    if plan.fused:
        def sim(count: int) -> float:
            tasks: list[Task] = []
            prev_av = None
            for i in range(count):
                ld = Task(f"in{i}", "dram", dram_cycles(per_row_bytes, hw))
                qk = Task(f"QK{i}", "2d", qk_cyc, deps=[ld])
                sm = Task(f"SM{i}", "1d", sm_cyc, deps=[qk])
                tasks += [ld, qk, sm]
                if prev_av is not None:
                    tasks.append(prev_av)
                prev_av = Task(f"AV{i}", "2d", av_cyc, deps=[sm])
            tasks.append(prev_av)
            return run(tasks, ["2d", "1d", "dram"]).makespan_cycles
        latency = extrapolate(sim, rows_total, 8, 16)
    else:
        def phase(unit: str, cyc: float, nbytes: float) -> float:
            def sim(count: int) -> float:
                tasks = []
                for i in range(count):
                    ld = Task(f"io{i}", "dram", dram_cycles(nbytes, hw))
                    tasks += [ld, Task(f"c{i}", unit, cyc, deps=[ld])]
                return run(tasks, [unit, "dram"]).makespan_cycles
            return extrapolate(sim, rows_total, 8, 16)
        latency = (phase("2d", qk_cyc, (traffic["Q"] + traffic["K"] + traffic["QK"] / 2) / rows_total)
                   + phase("1d", sm_cyc, (traffic["QK"] / 2 + traffic["A"] / 2) / rows_total)
                   + phase("2d", av_cyc, (traffic["A"] / 2 + traffic["V"] + traffic["AV"]) / rows_total))
    per_einsum = {"QK": qk_cyc * rows_total, "AV": av_cyc * rows_total, "softmax": sm_cyc * rows_total}
    busy = {"2d": per_einsum["QK"] + per_einsum["AV"], "1d": per_einsum["softmax"],
            "dram": dram_cycles(total_bytes, hw)}
    elements = s.b * s.h * s.m * s.p
    actions: dict[str, float] = {"mac": float(elements * (s.e + s.f)), "mac@2d": float(elements * (s.e + s.f))}
    for op, k in sm_ops:
        for act, n in hw.array_1d.cost(op).actions.items():
            actions[act] = actions.get(act, 0.0) + n * k * elements
    onchip_rows = elements * w * (0 if not plan.fused else (1 - spill)) * 3  # QK, SN, A through the buffer
    actions["buffer_read_bytes"] = total_bytes + onchip_rows
    actions["buffer_write_bytes"] = total_bytes + onchip_rows
    used = min(hw.buffer_bytes, flat_row_bytes(plan, s, hw)) if plan.fused else 0
    need = (plan.p0 * s.m * w + 2 * pes * w) if plan.fused else 2 * pes * w
    return SimResult(latency, busy, per_einsum, traffic, used, need, actions, spill)


def simulate_plan(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                  full_sim_max_tiles: int | None = None) -> SimResult:
    """Simulate one attention layer. 1-pass layers with more than ``full_sim_max_tiles`` tiles
    (default ``FULL_SIM_MAX_TILES``) are extrapolated from truncated streams."""
    if plan.cascade == "1pass":
        return simulate_one_pass(plan, hw, s, full_sim_max_tiles)
    if plan.cascade == "3pass":
        return simulate_three_pass(plan, hw, s)
    raise AccelsimError(f"unknown cascade {plan.cascade!r}", field="plan.cascade", allowed=["1pass", "3pass"])

