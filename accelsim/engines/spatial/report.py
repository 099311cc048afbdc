"""Energy and the attention Report of the spatial engine (Accelergy-style action counts).

One energy convention for the spatial kind: every energy comes from ``hardware.energy``
(``compute_pj`` per primitive action, ``buffer_*_pj_per_byte``, ``dram_pj_per_byte``) plus each
array's ``regfile_pj_per_mac``; the memory levels carry capacity and bandwidth only (the spec
rejects energies there, ``accelsim/hardware/spatial.py``).
"""
from __future__ import annotations

import math

from accelsim.engines.spatial.cascade import attention_shape
from accelsim.engines.spatial.costs import softmax_ops, useful_elements
from accelsim.engines.spatial.plan import AttentionPlan, decode
from accelsim.engines.spatial.simulate import SimResult, simulate_plan
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Graph
from accelsim.ir.views import AttentionShape
from accelsim.mapping import Mapping
from accelsim.report import Report, Totals


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
    table = plan.cascade_table
    layers = []
    for e, c in r.einsum_cycles.items():
        ce = table.einsums.get(e)
        layers.append({"einsum": e, "name": e, "op": ce.op if ce else e, "bound": "compute", "repeat": 1,
                       "unit": plan.binding.get(e, "2d" if e in table.macs else "1d"),
                       "busy_cycles": c, "total_cycles": c, "total_s": c / hw.clock_hz,
                       "util": c / lat if lat else 0.0})
    meta = {"plan": plan.describe(), "traffic_bytes": r.traffic, "energy_breakdown_pj": energy,
            "shape": vars(s), "pes_2d": pes2, "pes_1d": pes1}
    return Report(workload=workload, hardware=hw.name, layers=layers, totals=totals, meta=meta,
                  core=core_totals(plan, hw, s, r, energy))


# DRAM accesses per tensor of ``costs.traffic_bytes`` that are writes (the rest are reads):
# FLAT's 7 spilled accesses per score are QK, SN and A writes and four reads; QK and A through
# DRAM are one write and one read each.
WRITE_SHARE = {"AV": 1.0, "spill": 3 / 7, "QK": 0.5, "A": 0.5}
ROLE = {"Q": "input", "K": "input", "V": "input", "AV": "output"}  # the rest: score activations


def core_totals(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, r: SimResult,
                energy: dict[str, float]) -> Totals:
    """The engine interface's typed totals (``accelsim.report.Totals``) of one simulated layer."""
    writes = sum(b * WRITE_SHARE.get(t, 0.0) for t, b in r.traffic.items())
    reads = sum(r.traffic.values()) - writes
    roles: dict[str, float] = {}
    for t, b in r.traffic.items():
        roles[ROLE.get(t, "activation")] = roles.get(ROLE.get(t, "activation"), 0.0) + b
    bh, table = s.b * s.h, plan.cascade_table
    macs = bh * s.p * s.m * (s.e + s.f)  # QK (E per score) and the value product (F per score)
    if plan.cascade == "1pass":
        n_mt = math.ceil(s.m / plan.m0)
        vector = sum(bh * useful_elements(ce, s, n_mt) for ce in table.einsums.values() if ce.op != "mac")
    else:
        vector = bh * s.p * s.m * sum(k for _, k in softmax_ops(table))
    clock = hw.clock_hz
    return Totals(total_s=r.latency_cycles / clock, total_cycles=r.latency_cycles, macs=float(macs),
                  flops=float(2 * macs + vector),
                  energy_pj_by_component={k.removesuffix("_pj"): v for k, v in energy.items() if k != "total_pj"},
                  read_bytes={"dram": reads},
                  write_bytes={"dram": writes}, offchip_bytes_by_role=roles,
                  busy_s={u: c / clock for u, c in r.busy_cycles.items()})

