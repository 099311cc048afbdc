"""Energy and the attention Report of the spatial engine (Accelergy-style action counts).

One energy convention for the spatial kind: every energy comes from ``hardware.energy``
(``compute_pj`` per primitive action, ``buffer_*_pj_per_byte``, ``dram_pj_per_byte``) plus each
array's ``regfile_pj_per_mac``; the memory levels carry capacity and bandwidth only (the spec
rejects energies there, ``accelsim/hardware/spatial.py``).
"""
from __future__ import annotations

from accelsim.engines.spatial.cascade import attention_shape
from accelsim.engines.spatial.plan import AttentionPlan, decode
from accelsim.engines.spatial.simulate import SimResult, simulate_plan
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Graph
from accelsim.ir.views import AttentionShape
from accelsim.mapping import Mapping
from accelsim.report import Report


def energy_pj(result: SimResult, hw: SpatialAccelerator) -> dict[str, float]:
    """Energy by component from action counts and the per-action table (Accelergy-style)."""
    e = hw.energy
    compute = sum(n * e.compute_pj.get(act, 0.0) for act, n in result.actions.items()
                  if not act.endswith("_bytes") and "@" not in act)
    # operand register-file reads of each MAC, per array (Eyeriss-style PE register files)
    compute += (result.actions.get("mac@2d", 0.0) * hw.array_2d.regfile_pj_per_mac
                + result.actions.get("mac@1d", 0.0) * hw.array_1d.regfile_pj_per_mac)
    buffer = (result.actions.get("buffer_read_bytes", 0.0) * e.buffer_read_pj_per_byte
              + result.actions.get("buffer_write_bytes", 0.0) * e.buffer_write_pj_per_byte)
    dram = sum(result.traffic.values()) * e.dram_pj_per_byte
    return {"compute_pj": compute, "buffer_pj": buffer, "dram_pj": dram, "total_pj": compute + buffer + dram}



def simulate(graph: Graph, hw: SpatialAccelerator, mapping: Mapping,
             full_sim_max_tiles: int | None = None) -> SimResult:
    """Replay ``mapping`` of the cascade ``graph`` on ``hw``: the layer's schedule, traffic and
    action counts. 1-pass layers with more than ``full_sim_max_tiles`` tiles (default
    ``simulate.FULL_SIM_MAX_TILES``) are extrapolated from truncated streams."""
    return simulate_plan(decode(graph, mapping), hw, attention_shape(graph), full_sim_max_tiles)


def report(graph: Graph, hw: SpatialAccelerator, mapping: Mapping, workload: str | None = None) -> Report:
    """Simulate and package: latency, traffic, energy, utilization and buffer need."""
    plan, s = decode(graph, mapping), attention_shape(graph)
    return plan_report(plan, hw, s, workload or graph.name)


def plan_report(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, workload: str) -> Report:
    r = simulate_plan(plan, hw, s)
    lat = r.latency_cycles
    energy = energy_pj(r, hw)
    pes2, pes1 = hw.array_2d.pes, hw.array_1d.pes
    totals = {
        "latency_cycles": lat,
        "latency_s": lat / hw.clock_hz,
        "dram_bytes": sum(r.traffic.values()),
        "energy_pj": energy["total_pj"],
        "util_2d": r.busy_cycles["2d"] / lat if lat else 0.0,
        "util_1d": r.busy_cycles["1d"] / lat if lat else 0.0,
        "buffer_bytes_needed": r.buffer_bytes_needed,
        "buffer_bytes_used": r.buffer_bytes_used,
        "area_um2": hw.area_um2()["total"],
        "spill_fraction": r.spill_fraction,
    }
    layers = [{"einsum": e, "unit": plan.binding.get(e, "2d" if e in plan.cascade_table.macs else "1d"),
               "busy_cycles": c, "util": c / lat if lat else 0.0} for e, c in r.einsum_cycles.items()]
    meta = {"plan": plan.describe(), "traffic_bytes": r.traffic, "energy_breakdown_pj": energy,
            "shape": vars(s), "pes_2d": pes2, "pes_1d": pes1}
    return Report(workload=workload, hardware=hw.name, layers=layers, totals=totals, meta=meta)

