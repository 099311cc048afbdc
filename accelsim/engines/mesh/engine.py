"""The ``mesh`` engine: an LLM (ModelGraph) or a Graph on a wafer-scale core mesh.

Why this shape: it plugs into ``accelsim.simulate`` like every engine (``check`` is the cheap
capacity test, ``simulate`` the placement search plus per-Einsum costs from the hop-by-hop
network model). Memory levels: the wafer has no DRAM on its critical path; weights and the KV
cache are resident in the cores' SRAM, which is the device's main memory, so
``read_bytes['sram']`` and ``offchip_bytes_by_role`` count the bytes each role streams from that
memory per step (every weight and cache byte once, at least the compulsory traffic).
Two measurement conventions, named in every report's ``meta['convention']``: the default keeps
the whole model resident; ``layer_at_a_time=True`` is WaferLLM's (one layer per compile, summed
over layers, other layers' weights not resident and their loading not charged).
"""
from __future__ import annotations

from typing import Any, ClassVar

from accelsim.engines.registry import Problem
from accelsim.errors import AccelsimError
from accelsim.ir import Graph, ModelGraph, TensorRole
from accelsim.report import Report, Totals


class MeshEngine:
    kind = "mesh"
    metrics: ClassVar[dict[str, str]] = {"tokens_per_s": "float64", "latency_s": "float64", "grid": "string", "regions": "int64",
               "sram_used_bytes": "int64", "compute_s": "float64", "communication_s": "float64",
               "routing_s": "float64"}
    options: ClassVar[tuple[str, ...]] = ("grid", "layer_at_a_time")

    def check(self, workload: Any, hardware, mapping=None, layer_at_a_time: bool = False,
              grid: int | None = None, **options: Any) -> list[Problem]:
        """The cheap capacity test. ``layer_at_a_time`` asks only that each part fit alone (see
        ``layer_at_a_time.py``); by default the whole model must be resident."""
        from accelsim.engines.mesh.placement import best_effort_shortfall, candidate_grids, fitting_placement, parts_of, tokens_of

        if getattr(hardware, "kind", None) != "mesh":
            return [Problem("hardware.kind", f"the mesh engine runs mesh devices, not {hardware.kind!r}", "mesh")]
        if not isinstance(workload, (Graph, ModelGraph)):
            return [Problem("workload", f"cannot simulate a {type(workload).__name__}", "a Graph or a ModelGraph")]
        if mapping is not None:
            return [Problem("mapping", "the mesh engine chooses its own placement", "None (use grid=)")]
        if layer_at_a_time:
            from accelsim.engines.mesh.layer_at_a_time import shortfall

            missing_text = shortfall(workload, hardware, grid)
            return [] if missing_text is None else [Problem(
                "sram", f"does not fit {hardware.name} even one layer per compile: {missing_text}",
                "a smaller model or context, or a larger device")]
        parts = parts_of(workload)
        tokens = tokens_of(workload, parts)
        if any(fitting_placement(parts, hardware, g, tokens) for g in candidate_grids(hardware)):
            return []
        p, missing = best_effort_shortfall(parts, hardware, tokens)
        return [Problem("sram", f"weights and KV cache do not fit {hardware.name}: at best {p.sram_used_bytes} B "
                                f"per core ({p.regions} region(s) of {p.grid}x{p.grid}), "
                                f"{hardware.sram_bytes_per_core} B available, {missing / 2**30:.2f} GiB missing",
                        "a smaller model or context, or a larger device")]

    def simulate(self, workload: Any, hardware, mapping=None, grid: int | None = None, layer_at_a_time: bool = False,
                 **options: Any) -> Report:
        """``layer_at_a_time=True``: WaferLLM's measurement convention (each part compiled alone,
        times its repeat; other layers' weights not resident, their loading not charged); the
        report's ``convention`` says which convention made the number."""
        from accelsim.engines.mesh.layer_at_a_time import RESIDENT_CONVENTION, layer_plan
        from accelsim.engines.mesh.placement import parts_of, plan

        if options:
            raise AccelsimError(f"unknown options {sorted(options)}", field="options", allowed="grid, layer_at_a_time")
        if not isinstance(layer_at_a_time, bool):
            raise AccelsimError(f"must be true or false, got {layer_at_a_time!r}", field="layer_at_a_time",
                                allowed=(True, False))
        per_layer: list[dict] = []
        if layer_at_a_time:
            wp, runs, convention = layer_plan(workload, hardware, grid=grid)
            per_layer = [{"part": r.part, "repeat": r.repeat, "one_s": r.plan.cycles / hardware.clock_hz,
                          "sram_used_bytes": r.plan.placement.sram_used_bytes} for r in runs]
        else:
            wp, convention = plan(workload, hardware, grid=grid), RESIDENT_CONVENTION
        clock = hardware.clock_hz
        layers, macs, flops = [], 0.0, 0.0
        for cost, repeat, part in wp.rows:
            macs += cost.macs * repeat
            flops += cost.flops * repeat
            bound = "communication" if cost.comm_cycles > cost.compute_cycles else "compute"
            layers.append({"name": f"{part}.{cost.name}" if part != workload.name else cost.name, "op": cost.op,
                           "unit": cost.mode, "bound": bound, "repeat": repeat,
                           "total_s": cost.total_cycles / clock, "total_cycles": cost.total_cycles,
                           "compute_cycles": cost.compute_cycles, "comm_cycles": cost.comm_cycles,
                           "routing_cycles": cost.routing_cycles})
        by_role = _bytes_by_role(parts_of(workload))
        sram_bytes = float(sum(by_role.values()))
        core = Totals(total_s=wp.cycles / clock, total_cycles=wp.cycles, macs=macs, flops=flops,
                      energy_pj_by_component={"mesh": None},  # no energy model for the mesh yet
                      read_bytes={"sram": sram_bytes}, write_bytes={}, offchip_bytes_by_role=by_role,
                      busy_s={"mac": min(wp.compute_cycles, wp.cycles) / clock,
                              "fabric": min(wp.comm_cycles + wp.handoff_cycles, wp.cycles) / clock})
        g = wp.placement.grid
        latency = wp.cycles / clock
        extra = {"tokens_per_s": wp.tokens / latency if latency > 0 else 0.0, "latency_s": latency,
                 "grid": f"{g}x{g}", "regions": wp.placement.regions,
                 "sram_used_bytes": wp.placement.sram_used_bytes, "compute_s": wp.compute_cycles / clock,
                 "communication_s": (wp.comm_cycles - wp.routing_cycles + wp.handoff_cycles) / clock,
                 "routing_s": wp.routing_cycles / clock}
        meta = {"convention": convention, "layer_at_a_time": layer_at_a_time, "per_layer": per_layer,
                "phase": wp.phase, "tokens": wp.tokens, "reason": wp.reason, "candidates": wp.candidates,
                "blocks_per_region": wp.placement.blocks_per_region,
                "sram_breakdown_bytes": {"weights": wp.placement.weights_bytes, "kv_cache": wp.placement.kv_bytes,
                                         "activations": wp.placement.activation_bytes,
                                         "kernel_buffers": wp.placement.work_bytes},
                "time_split_s": {"compute": extra["compute_s"], "communication": extra["communication_s"],
                                 "routing_overhead": extra["routing_s"]},
                "assumptions": ["one element-wise op per core per cycle", "KV-cache writes shift one hop",
                                "layers of one request run in sequence (no overlap between layers)",
                                *(["one part per compile: other layers' weights not resident, their loading and "
                                   "the hand-off between layers not charged"] if layer_at_a_time else []),
                                "consecutive GEMVs alternate their reduction axis, so no transpose between them",
                                "no compiler-inserted idle cycles or SRAM bank conflicts (WaferLLM issue #7)",
                                "no per-instruction (DSD issue) overhead for short tiles: no published figure",
                                "asynchronous tile moves do not slow the FMACs (SRAM-port sharing not modelled)"]}
        return Report(workload.name, hardware.name, layers, {**core.flat(), **extra}, meta, core)


def _bytes_by_role(parts) -> dict[str, float]:
    """Bytes each role streams from the resident SRAM in one step (each distinct tensor once per
    repeat); graph inputs are what the host sends in."""
    out: dict[str, float] = {}
    for p in parts:
        seen: dict[str, tuple[Any, float]] = {}
        for e in p.graph.einsums:
            touched = e.attrs.get("touched", {})
            for t in e.tensors:
                frac = float(touched.get(t.name, 1.0))
                seen[t.name] = (t, max(frac, seen.get(t.name, (t, 0.0))[1]))
        for t, frac in seen.values():
            role = t.role.value if t.role is not TensorRole.OUTPUT else "activation"
            out[role] = out.get(role, 0.0) + t.bytes * frac * p.repeat
    return out
