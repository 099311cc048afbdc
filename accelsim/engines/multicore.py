"""Engine for the ``multicore`` kind: MAC Einsums as loop nests, the rest on the vector units.

* A two-input multiply-accumulate Einsum is viewed as a GEMM (``Einsum.as_gemm``). Its loop nest
  comes from the mapping (``Mapping.tiling[einsum]``, replayed and validated) or, when there is
  none, from the tiling mapper (``mappers.tiling.map_problem``: latency objective without
  tie-breakers, padded shapes tried too, a time limit per operator); ``accelsim.engines.loopnest`` counts its accesses per level and per tensor, cycles
  and energy. ``attrs['flop_fraction']`` (a causal mask computing part of the space) scales
  every count of that operator.
* Element-wise, softmax, norm and copy Einsums run on the cores' vector units, bound by the
  larger of their FLOPs over the vector rate and their compulsory bytes (``einsum_traffic``)
  over DRAM bandwidth: operands are not assumed resident on chip between operators.
* Every operator adds ``launch_overhead_s`` (one kernel launch each).
* The spec's ``compute_efficiency`` and ``memory_efficiency`` (achievable fractions of the arrays'
  and vector units' peak and of the DRAM bandwidth) reach GEMMs through ``hw.hierarchy()``, whose
  cycles are array steps at ``hw.array_clock_hz``, and the vector and all-reduce operators through
  ``hw.vector_flops_per_s * hw.compute_efficiency`` and ``hw.dram_bytes_per_s``. ``total_cycles`` stays in
  nominal clocks.

* An all-reduce (``OpKind.ALLREDUCE`` with ``attrs['collective_bytes']``, the bytes each device
  sends, ``workloads.builder``'s ring count) takes the larger of those bytes over the spec's
  ``interconnect_bytes_per_s`` (one direction; a ring sends and receives at once) and its in-place
  HBM traffic over DRAM bandwidth, plus one launch. Without a link the spec is one device and
  ``check`` refuses it; no link latency term beyond the launch is modelled.
"""
from __future__ import annotations

from typing import Any, ClassVar

from accelsim.engines.loopnest import NestCost, evaluate
from accelsim.engines.registry import Problem, register_engine
from accelsim.engines.roofline import einsum_flops, einsum_traffic
from accelsim.errors import AccelsimError
from accelsim.hardware.multicore import MulticoreAccelerator
from accelsim.ir import Einsum, Graph, OpKind, TensorRole, parts_of
from accelsim.mapping import Mapping
from accelsim.report import Report, Totals
from accelsim.tiling import LoopNest, LoopProblem, validate_nest

DEFAULT_TIME_LIMIT_S = 2.0


def _parts(workload: Any) -> list[tuple[str, Graph, int]]:
    return [(p.name, p.graph, p.repeat) for p in parts_of(workload)]


def is_gemm(e: Einsum) -> bool:
    return e.op is OpKind.MAC and len(e.inputs) == 2


_SEARCH_CACHE: dict[tuple, Any] = {}


def gemm_nest(problem: LoopProblem, hw: MulticoreAccelerator, time_limit_s: float) -> tuple[LoopNest, dict]:
    """The default mapper's nest for ``problem`` (the tiling mapper, found through the
    ``accelsim.default_mappers`` entry point; cached by shape: a transformer repeats its GEMMs)."""
    from accelsim.engines.registry import default_mapper

    map_problem = default_mapper("multicore")

    key = (hw.model_dump_json(), tuple(problem.extents.items()), tuple(t.dtype_bytes for t in problem.tensors),
           time_limit_s)
    if key not in _SEARCH_CACHE:
        shape = LoopProblem(problem.name, dict(problem.extents), problem.tensors)
        r = map_problem(shape, hw, "latency", time_limit_s, pad=True, tie_break=False)
        _SEARCH_CACHE[key] = (r.nest, {"status": r.status, "gap": r.gap, "solve_s": r.solve_s})
    nest, info = _SEARCH_CACHE[key]
    return LoopNest(problem.name, nest.extents, nest.levels), info


def gemm_cost(e: Einsum, hw: MulticoreAccelerator, mapping: Mapping | None, time_limit_s: float
              ) -> tuple[NestCost, LoopNest, dict]:
    problem = LoopProblem.from_einsum(e)
    hierarchy = hw.hierarchy()
    if mapping is not None and e.name in mapping.tiling:
        nest = LoopNest.from_dict(e.name, mapping.tiling[e.name])
        validate_nest(nest, problem, hierarchy)
        info = {"status": "given", "gap": None, "solve_s": 0.0}
    else:
        nest, info = gemm_nest(problem, hw, time_limit_s)
    return evaluate(nest, problem, hierarchy), nest, info


def _gemm_row(e: Einsum, hw: MulticoreAccelerator, cost: NestCost, info: dict) -> tuple[dict, Totals]:
    frac = float(e.attrs.get("flop_fraction", 1.0))
    clock = hw.clock_hz
    step_hz = hw.array_clock_hz  # the hierarchy's cycles are array steps (hw.hierarchy())
    work_s = cost.latency_cycles / step_hz * frac
    total_s = work_s + hw.launch_overhead_s
    reads = {lv: sum(v.values()) * frac for lv, v in cost.reads_bytes.items()}
    writes = {lv: sum(v.values()) * frac for lv, v in cost.writes_bytes.items()}
    dram = cost.dram_level
    roles = {t.name: t.role.value for t in e.tensors}
    # A partly computed space (flop_fraction < 1) skips tiles, but never moves less than the
    # tensors it touches (einsum_traffic, with attrs['touched']).
    floor = einsum_traffic(e)
    out = e.output.tensor.name
    reads[dram] = writes[dram] = 0.0
    by_role: dict[str, float] = {}
    for tname in cost.reads_bytes[dram]:
        r = max(cost.reads_bytes[dram][tname] * frac, 0.0 if tname == out else floor[tname])
        w = max(cost.writes_bytes[dram][tname] * frac, floor[tname] if tname == out else 0.0)
        reads[dram] += r
        writes[dram] += w
        by_role[roles[tname]] = by_role.get(roles[tname], 0.0) + r + w
    busy_s = {"array": cost.macs * frac / hw.peak_macs_per_cycle / step_hz,
              **{f"{lv}_port": c * frac / step_hz for lv, c in cost.level_cycles.items()}}
    bound = max(["compute", *cost.level_cycles], key=lambda k: cost.compute_cycles if k == "compute"
                else cost.level_cycles[k])
    # MACs and FLOPs are the Einsum's own; busy cycles, bytes and energy include any padding
    totals = Totals(total_s, total_s * clock, e.macs * frac, 2.0 * e.macs * frac,
                    {"array_and_memories": cost.energy_pj * frac}, _dram_named(reads, dram),
                    _dram_named(writes, dram), by_role, busy_s)
    row = {"name": e.name, "op": e.op.value, "unit": "array", "bound": bound, "total_s": total_s,
           "total_cycles": total_s * clock, "dram_bytes": reads[dram] + writes[dram], "utilization_array":
           cost.macs * frac / hw.peak_macs_per_cycle / (total_s * clock), "mapper_status": info["status"],
           "mapper_gap": info["gap"],
           "flops": 2.0 * e.macs * frac, "roof": "array", "peak_flops_per_s": 2.0 * hw.peak_macs_per_cycle * clock}
    return row, totals


def _dram_named(per_level: dict[str, float], dram: str) -> dict[str, float]:
    """The Report vocabulary calls the off-chip level ``dram`` whatever the preset names it (HBM2e)."""
    return {("dram" if level == dram else level): b for level, b in per_level.items()}


def _vector_row(e: Einsum, hw: MulticoreAccelerator) -> tuple[dict, Totals]:
    flops = einsum_flops(e)
    traffic = einsum_traffic(e)
    nbytes = sum(traffic.values())
    vector_s = flops / (hw.vector_flops_per_s * hw.compute_efficiency)
    memory_s = nbytes / hw.dram_bytes_per_s
    total_s = max(vector_s, memory_s) + hw.launch_overhead_s
    clock = hw.clock_hz
    tensors = {t.name: t for t in e.tensors}
    by_role: dict[str, float] = {}
    for tname, b in traffic.items():
        role = tensors[tname].role.value
        by_role[role] = by_role.get(role, 0.0) + b
    out_name = e.output.tensor.name
    written = traffic.get(out_name, 0.0)
    energy = (flops * hw.vector_energy_pj_per_flop + (nbytes - written) * hw.dram.read_energy_pj_per_byte
              + written * hw.dram.write_energy_pj_per_byte)
    busy = {"vector": vector_s * clock, f"{hw.dram.name}_port": memory_s * clock}
    totals = Totals(total_s, total_s * clock, float(e.macs), flops, {"vector_and_dram": energy},
                    {"dram": nbytes - written}, {"dram": written}, by_role, {u: c / clock for u, c in busy.items()})
    row = {"name": e.name, "op": e.op.value, "unit": "vector", "bound": "vector" if vector_s >= memory_s else "memory",
           "total_s": total_s, "total_cycles": total_s * clock, "dram_bytes": nbytes, "flops": flops,
           "roof": "vector", "peak_flops_per_s": hw.vector_flops_per_s}
    return row, totals


def _allreduce_row(e: Einsum, hw: MulticoreAccelerator) -> tuple[dict, Totals]:
    link = hw.interconnect_bytes_per_s
    assert link is not None  # check() refuses an all-reduce on a spec without a link
    sent_bytes = float(e.attrs["collective_bytes"])
    traffic = einsum_traffic(e)  # in place: the buffer read and written once
    nbytes = sum(traffic.values())
    link_s = sent_bytes / link
    memory_s = nbytes / hw.dram_bytes_per_s
    total_s = max(link_s, memory_s) + hw.launch_overhead_s
    clock = hw.clock_hz
    flops = einsum_flops(e)
    energy = (flops * hw.vector_energy_pj_per_flop + nbytes / 2 * hw.dram.read_energy_pj_per_byte
              + nbytes / 2 * hw.dram.write_energy_pj_per_byte)
    busy = {"link": link_s, f"{hw.dram.name}_port": memory_s}
    role = e.output.tensor.role.value
    totals = Totals(total_s, total_s * clock, 0.0, flops, {"vector_and_dram": energy}, {"dram": nbytes / 2},
                    {"dram": nbytes / 2}, {role: nbytes}, busy)
    row = {"name": e.name, "op": e.op.value, "unit": "link", "bound": "communication" if link_s >= memory_s
           else "memory", "total_s": total_s, "total_cycles": total_s * clock, "dram_bytes": nbytes,
           "link_bytes": sent_bytes, "flops": flops, "roof": "link", "peak_flops_per_s": hw.vector_flops_per_s}
    return row, totals


class MulticoreEngine:
    kind = "multicore"
    metrics: ClassVar[dict[str, str]] = {"launches": "int64", "mapper_time_limited": "int64",
                                         "dram_bytes_per_s": "float64"}
    options: ClassVar[tuple[str, ...]] = ("time_limit_s",)

    def check(self, workload: Any, hardware: Any, mapping: Mapping | None, **options: Any) -> list[Problem]:
        problems: list[Problem] = []
        if not isinstance(hardware, MulticoreAccelerator):
            return [Problem("hardware.kind", f"needs a multicore spec, got {getattr(hardware, 'kind', hardware)!r}",
                            "multicore")]
        if mapping is not None:  # a mapping names Einsums of this workload, or it maps something else
            names = {e.name for _, g, _ in _parts(workload) for e in g.einsums}
            unknown = sorted({n for n in (*mapping.schedule, *mapping.tiling) if n not in names})
            if unknown:
                problems.append(Problem("mapping", f"names einsums the workload does not have: {unknown[:5]}",
                                        "einsum names of the workload"))
        capacity = hardware.dram.capacity_bytes
        if capacity is not None:
            from accelsim.ir.resident import resident_tensors

            resident = resident_tensors(_parts(workload), (TensorRole.WEIGHT, TensorRole.KV_CACHE))
            held = sum(t.bytes * n for t, n in resident.values())
            if held > capacity:
                problems.append(Problem(f"hardware.{hardware.dram.name}.capacity_bytes",
                                        f"weights and KV cache take {held} bytes, {hardware.dram.name} holds {capacity}",
                                        f">= {held} bytes, or a smaller workload"))
        for part, graph, _ in _parts(workload):
            for e in graph.einsums:
                if e.op is OpKind.ALLREDUCE and hardware.interconnect_bytes_per_s is None:
                    problems.append(Problem(f"einsum {e.name}", f"an all-reduce needs an interconnect, and "
                                            f"{hardware.name} has no interconnect_bytes_per_s",
                                            "single-device workloads (tp=1), or a spec with a link"))
                elif e.op is OpKind.ALLREDUCE and not e.attrs.get("collective_bytes"):
                    problems.append(Problem(f"einsum {e.name}", "an all-reduce without attrs['collective_bytes'] "
                                            "(the bytes each device sends)", "collective_bytes > 0"))
                elif is_gemm(e) and mapping is not None and e.name in mapping.tiling:
                    try:
                        validate_nest(LoopNest.from_dict(e.name, mapping.tiling[e.name]), LoopProblem.from_einsum(e),
                                      hardware.hierarchy())
                    except AccelsimError as err:
                        problems.append(Problem(err.field or f"mapping.tiling.{e.name}", err.detail, err.allowed))
                elif is_gemm(e):
                    try:
                        LoopProblem.from_einsum(e)
                    except AccelsimError as err:
                        problems.append(Problem(err.field or f"einsum {e.name}", err.detail, err.allowed))
        return problems

    def simulate(self, workload: Any, hardware: MulticoreAccelerator, mapping: Mapping | None = None,
                 **options: Any) -> Report:
        time_limit_s = float(options.get("time_limit_s", DEFAULT_TIME_LIMIT_S))
        layers: list[dict] = []
        core: Totals | None = None
        launches = limited = 0
        for part, graph, repeat in _parts(workload):
            for e in graph.einsums:
                if is_gemm(e):
                    cost, _, info = gemm_cost(e, hardware, mapping, time_limit_s)
                    row, t = _gemm_row(e, hardware, cost, info)
                    limited += info["status"] == "time_limit"
                elif e.op is OpKind.ALLREDUCE:
                    row, t = _allreduce_row(e, hardware)
                else:
                    row, t = _vector_row(e, hardware)
                row = {**row, "name": f"{part}.{e.name}" if part else e.name, "part": part, "repeat": repeat}
                t = t.scaled(repeat)
                launches += repeat
                layers.append(row)
                core = t if core is None else core + t
        assert core is not None  # a Graph has at least one Einsum
        totals = {**core.flat(), "launches": launches, "mapper_time_limited": limited,
                  "dram_bytes_per_s": hardware.dram_bytes_per_cycle * hardware.clock_hz}
        meta = {"engine": "multicore", "mapper": "tiling (latency)", "time_limit_s": time_limit_s,
                "launch_overhead_s": hardware.launch_overhead_s, "compute_efficiency": hardware.compute_efficiency,
                "memory_efficiency": hardware.memory_efficiency}
        return Report(getattr(workload, "name", "workload"), hardware.name, layers, totals, meta, core)


register_engine(MulticoreEngine())
