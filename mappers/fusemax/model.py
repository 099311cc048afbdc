"""The optimizer's steady-state cost model of a 1-pass plan: per-tile cycles per array, latency
(the stage schedule's period times the tiles, or DRAM), and energy (per-action table)."""
from __future__ import annotations

import math

from accelsim.engines.spatial import (
    AttentionPlan,
    Cascade,
    einsum_cycles,
    stage_cycles,
    staged_tile_tensors,
    traffic_bytes,
    useful_elements,
)
from accelsim.errors import InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape


def _allowed_units(tb: Cascade, e: str, hw: SpatialAccelerator) -> list[str]:
    op = tb.op(e)
    units = [u for u, a in (("2d", hw.array_2d), ("1d", hw.array_1d)) if op in a.ops]
    if not units:
        raise InfeasibleError(f"no array of {hw.name} can run {e} ({op})", field="hardware")
    return units



def model_costs(tb: Cascade, hw: SpatialAccelerator, s: AttentionShape, p0: int, m0: int) -> dict:
    """Per Einsum, per array that can run it: cycles of one tile's instance."""
    return {e: {u: einsum_cycles(ce, u, hw, s, p0, m0) for u in _allowed_units(tb, e, hw)}
            for e, ce in tb.einsums.items()}


# Plans whose model latency is within this fraction of the optimum are re-simulated and the
# fastest simulated one is returned: the model is a steady state (no fill, no buffer waits),


def model_value(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, objective: str) -> float:
    if objective == "latency":
        return model_latency_cycles(plan, hw, s)
    dram = sum(traffic_bytes(plan, s, hw).values())
    if objective == "dram":
        return dram
    return model_energy_pj(plan, hw, s)


def compute_pj(op: str, unit: str, hw: SpatialAccelerator) -> float:
    """Compute energy of Einsum ``e`` on ``unit`` for the whole layer (the same action counts and
    per-action table as ``spatial_attention.energy_pj``)."""
    array = hw.array_2d if unit == "2d" else hw.array_1d
    acts = dict(array.cost(op).actions)
    if op == "exp" and "add" not in acts:
        for act, k in array.cost("sub").actions.items():  # the separate subtraction
            acts[act] = acts.get(act, 0) + k
    per_element = sum(k * hw.energy.compute_pj.get(a, 0.0) for a, k in acts.items())
    per_element += acts.get("mac", 0) * array.regfile_pj_per_mac
    return per_element


def model_energy_pj(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> float:
    """The optimizer's energy model of a 1-pass plan: DRAM bytes (with their buffer write and
    read), staging of tile tensors crossing arrays, and compute (per-action table)."""
    dram_pj, staged_pj = energy_coeffs(hw, s)
    n_mt = math.ceil(s.m / plan.m0)
    compute = sum(compute_pj(ce.op, plan.binding[e], hw) * s.b * s.h * useful_elements(ce, s, n_mt)
                  for e, ce in plan.cascade_table.einsums.items())
    return dram_pj * sum(traffic_bytes(plan, s, hw).values()) + staged_pj * staged_tile_tensors(plan) + compute


def energy_coeffs(hw: SpatialAccelerator, s: AttentionShape) -> tuple[float, float]:
    """pJ per DRAM byte (with its buffer write and read) and per staged tile tensor (whole layer)."""
    e = hw.energy
    dram = e.dram_pj_per_byte + e.buffer_write_pj_per_byte + e.buffer_read_pj_per_byte
    staged = (e.buffer_write_pj_per_byte + e.buffer_read_pj_per_byte) * s.b * s.h * s.m * s.p * hw.word_bytes
    return dram, staged



def model_latency_cycles(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> float:
    """The optimizer's latency model for any 1-pass plan: max(compute, DRAM) with the per-tile
    period from the stage schedule and AV once per query tile (used to compare plans)."""
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    cyc = stage_cycles(plan, hw, s)
    period = sum(max(c["2d"] + c["stall"], c["1d"]) for c in cyc)
    tb = plan.cascade_table
    av_unit = plan.binding[tb.final]
    k = next(i for i, st_ in enumerate(plan.stages) if tb.final in st_)
    c = cyc[k]
    av = einsum_cycles(tb.einsums[tb.final], av_unit, hw, s, plan.p0, plan.m0)
    load = c[av_unit] + (c["stall"] if av_unit == "2d" else 0)
    av_extra = max(0, load + av - max(c["2d"] + c["stall"], c["1d"]))
    compute = s.b * s.h * n_pt * (n_mt * period + av_extra)
    dram = sum(traffic_bytes(plan, s, hw).values()) / hw.dram.bytes_per_cycle(hw.clock_hz)
    return max(compute, dram)

