"""Placing an LLM on a wafer-scale mesh: which core grid, how many layer regions, does it fit.

Why a search: on a wafer the grid is the design choice (WaferLLM chooses its core grids
offline, He et al., OSDI'25, §7). A larger g x g grid divides compute by g^2 but lengthens every
allreduce (more hops, more relay stages); a smaller one may not hold the weights and KV cache
in 48 KB per core. Layers can share one grid (every core holds a slice of every layer) or be
pipelined over R disjoint regions of the wafer, each holding a run of layers (the paper's layer
pipelining, "48 KB SRAM forces pipeline parallelism", §7.5); a request then walks the regions
in turn and pays one hand-off of the hidden state per region boundary.

Why in the engine and not in ``mappers/``: ``simulate(model, "wse2")`` with no mapping places the
model itself (the engine's default schedule, as the accelerator engine chooses its own tiles), and
the simulator never imports a mapper; ``mappers.wafer`` is the mapper's face of the same search.

For each candidate g the fewest regions that fit are taken (more regions only add hand-offs);
the fastest fitting (g, R) wins. Weights, the KV cache (read cache plus the entries written)
and the largest activation are spread over the cores that hold them; per-kernel buffers come
from the kernel cost (``EinsumCost.work_bytes_per_core``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from accelsim.engines.mesh.einsum_cost import EinsumCost, GridCoster
from accelsim.errors import AccelsimError
from accelsim.ir import Graph, ModelGraph, OpKind, TensorRole


@dataclass(frozen=True)
class PartSpec:
    name: str
    graph: Graph
    repeat: int


def parts_of(workload: Any) -> list[PartSpec]:
    if isinstance(workload, ModelGraph):
        return [PartSpec(p.name, p.graph, p.repeat) for p in workload.parts]
    if isinstance(workload, Graph):
        return [PartSpec(workload.name, workload, 1)]
    raise AccelsimError(f"cannot place a {type(workload).__name__}", field="workload",
                        allowed="a Graph or a ModelGraph")


def tokens_of(workload: Any, parts: list[PartSpec]) -> int:
    """Token rows in flight: batch (decode) or batch x seq (prefill); for a bare Graph the largest
    row count of its matrix multiplies."""
    meta = getattr(workload, "meta", {}) or {}
    if meta.get("phase") == "decode":
        return int(meta.get("batch", 1))
    if meta.get("phase") == "prefill":
        return int(meta.get("batch", 1)) * int(meta.get("seq", 1))
    from accelsim.engines.mesh.einsum_cost import gemm_view

    rows = [gemm_view(e)[1] for p in parts for e in p.graph.einsums if e.op is OpKind.MAC]
    return max(rows, default=1)


def _stored_bytes(graph: Graph, g: int) -> tuple[int, int]:
    """Per-core bytes of one copy of ``graph``'s weights and KV cache on a g x g grid."""
    cores = g * g
    weights = kv = 0
    for t in graph.tensors.values():
        per_core = math.ceil(t.elements / cores) * t.dtype_bytes
        if t.role is TensorRole.WEIGHT:
            weights += per_core
        elif t.role is TensorRole.KV_CACHE:
            kv += per_core
    for e in graph.einsums:  # entries written this step stay in the cache
        if e.attrs.get("kind") == "kv_write":
            kv += math.ceil(e.output.tensor.elements / cores) * e.output.tensor.dtype_bytes
    return weights, kv


def _activation_bytes(parts: list[PartSpec], g: int, tokens: int) -> int:
    spread = g * g if tokens >= g else g
    largest = max((t for p in parts for t in p.graph.tensors.values() if t.role is TensorRole.ACTIVATION),
                  key=lambda t: t.bytes, default=None)
    return 0 if largest is None else 2 * math.ceil(largest.elements / spread) * largest.dtype_bytes  # in and out


@dataclass
class Placement:
    grid: int
    regions: int
    blocks_per_region: int
    sram_used_bytes: int  # per core, the fullest region
    weights_bytes: int
    kv_bytes: int
    activation_bytes: int
    work_bytes: int = 0

    def fits(self, device) -> bool:
        return self.sram_used_bytes <= device.sram_bytes_per_core


def placement(parts: list[PartSpec], device, g: int, regions: int, tokens: int, work_bytes: int = 0) -> Placement:
    """SRAM per core when the repeated blocks are spread over ``regions`` regions of g x g."""
    main_index = max(range(len(parts)), key=lambda i: parts[i].repeat)
    main = parts[main_index]
    per_region = math.ceil(main.repeat / regions)
    w_main, kv_main = _stored_bytes(main.graph, g)
    # parts before the repeated blocks (embedding) live in the first region, parts after (head) in the last
    first = [(_stored_bytes(p.graph, g), p.repeat) for p in parts[:main_index]]
    last = [(_stored_bytes(p.graph, g), p.repeat) for p in parts[main_index + 1:]]
    used = min(regions, main.repeat)
    regions_loads = []
    for r in range(used):
        here = (first if r == 0 else []) + (last if r == used - 1 else [])
        w = per_region * w_main + sum(a[0] * n for a, n in here)
        kv = per_region * kv_main + sum(a[1] * n for a, n in here)
        regions_loads.append((w + kv, w, kv))
    total, w, kv = max(regions_loads)
    act = _activation_bytes(parts, g, tokens)
    return Placement(g, regions, per_region, total + act + work_bytes, w, kv, act, work_bytes)


def max_regions(device, g: int) -> int:
    return (device.usable_width // g) * (device.usable_height // g)


def fitting_placement(parts, device, g: int, tokens: int, work_bytes: int = 0) -> Placement | None:
    main = max(parts, key=lambda p: p.repeat)
    for regions in range(1, min(max_regions(device, g), main.repeat) + 1):
        p = placement(parts, device, g, regions, tokens, work_bytes)
        if p.fits(device):
            return p
    return None


def best_effort_shortfall(parts, device, tokens: int) -> tuple[Placement, int]:
    """The placement that comes closest to fitting, and the SRAM it lacks in total (bytes)."""
    best = None
    for g in candidate_grids(device):
        main = max(parts, key=lambda p: p.repeat)
        regions = max(1, min(max_regions(device, g), main.repeat))
        p = placement(parts, device, g, regions, tokens)
        cores = g * g * regions
        missing = (p.sram_used_bytes - device.sram_bytes_per_core) * cores
        if best is None or missing < best[1]:
            best = (p, missing)
    return best


def candidate_grids(device, step: int | None = None) -> list[int]:
    top = min(device.usable_width, device.usable_height)
    step = step or max(1, top // 24)
    grids = sorted(set(range(step, top + 1, step)) | {top})
    return [g for g in grids if g >= 2] or [top]


@dataclass
class WaferPlan:
    phase: str
    tokens: int
    placement: Placement
    cycles: float
    compute_cycles: float
    comm_cycles: float
    routing_cycles: float
    handoff_cycles: float
    rows: list[tuple[EinsumCost, int, str]]  # cost, repeat, part
    reason: str
    candidates: list[dict] = field(default_factory=list)


def cost_at(parts, device, g: int, tokens: int) -> tuple[float, float, float, float, list, int]:
    coster = GridCoster(device, g)
    rows, total, comp, comm, routing, work = [], 0.0, 0.0, 0.0, 0.0, 0
    for p in parts:
        for e in p.graph.einsums:
            c = coster.cost(e, tokens)
            rows.append((c, p.repeat, p.name))
            total += c.total_cycles * p.repeat
            comp += c.compute_cycles * p.repeat
            comm += c.comm_cycles * p.repeat
            routing += c.routing_cycles * p.repeat
            work = max(work, c.work_bytes_per_core)
    return total, comp, comm, routing, rows, work


def handoff_cycles(device, g: int, tokens: int, hidden: int) -> float:
    """One hand-off of the hidden state to the next region: every line of g cores streams its
    slice about g hops (one relay stage)."""
    per_line = math.ceil(tokens * hidden / g)
    return device.beta_cycles + g * device.alpha_cycles + device.wavelets(per_line)


def plan(workload: Any, device, grid: int | None = None, phase: str | None = None) -> WaferPlan:
    """The fastest (grid, regions) that fits, or the one given by ``grid``."""
    parts = parts_of(workload)
    tokens = tokens_of(workload, parts)
    phase = phase or (getattr(workload, "meta", {}) or {}).get("phase", "graph")
    hidden = getattr(getattr(workload, "config", None), "hidden_size", None) or 1
    grids = [grid] if grid is not None else candidate_grids(device)
    if grid is not None:
        device.check_grid(grid, grid)
    evaluated = []
    for g in grids:
        fit = fitting_placement(parts, device, g, tokens)
        if fit is None:
            evaluated.append({"grid": g, "fits": False, "sram_used_bytes": placement(
                parts, device, g, max(1, min(max_regions(device, g), max(p.repeat for p in parts))),
                tokens).sram_used_bytes})
            continue
        total, comp, comm, routing, rows, work = cost_at(parts, device, g, tokens)
        fit = fitting_placement(parts, device, g, tokens, work)
        if fit is None:  # the stored data fit, the kernels' buffers on top do not
            fullest = placement(parts, device, g, max(1, min(max_regions(device, g), max(p.repeat for p in parts))),
                                tokens, work)
            evaluated.append({"grid": g, "fits": False, "sram_used_bytes": fullest.sram_used_bytes,
                              "placement": fullest})
            continue
        used_regions = min(fit.regions, max(p.repeat for p in parts))
        hand = (used_regions - 1) * handoff_cycles(device, g, tokens, hidden)
        evaluated.append({"grid": g, "fits": True, "regions": fit.regions, "cycles": total + hand,
                          "compute_cycles": comp, "comm_cycles": comm, "placement": fit, "rows": rows,
                          "routing_cycles": routing, "handoff_cycles": hand, "sram_used_bytes": fit.sram_used_bytes})
    fitting = [c for c in evaluated if c["fits"]]
    if not fitting:
        p, missing = best_effort_shortfall(parts, device, tokens) if grid is None else (None, None)
        if grid is not None:
            main = max(parts, key=lambda q: q.repeat)
            p = evaluated[0].get("placement") or placement(
                parts, device, grid, max(1, min(max_regions(device, grid), main.repeat)), tokens)
            missing = (p.sram_used_bytes - device.sram_bytes_per_core) * grid * grid * min(p.regions, main.repeat)
        raise AccelsimError(
            f"does not fit {device.name}: at best {p.sram_used_bytes} B per core on {p.regions} region(s) of "
            f"{p.grid} x {p.grid} cores, {device.sram_bytes_per_core} B available; "
            f"{_gib(missing)} of SRAM missing", field="sram",
            allowed="a smaller model, shorter context or larger device")
    best = min(fitting, key=lambda c: c["cycles"])
    reason = _reason(best, fitting, evaluated, grid is not None)
    return WaferPlan(phase, tokens, best["placement"], best["cycles"], best["compute_cycles"], best["comm_cycles"],
                     best["routing_cycles"], best["handoff_cycles"], best["rows"], reason,
                     [{k: v for k, v in c.items() if k not in ("placement", "rows")} for c in evaluated])


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 / 100 else f"{n / 2**20:.2f} MiB"


def _reason(best: dict, fitting: list[dict], evaluated: list[dict], forced: bool) -> str:
    g = best["grid"]
    where = f"{g}x{g} grid, {best['regions']} region(s)"
    if forced:
        return f"{where}: given by --grid"
    too_small = [c["grid"] for c in evaluated if not c["fits"]]
    parts = [f"{where}: fastest of {len(fitting)} fitting grids"]
    if too_small:
        parts.append(f"grids up to {max(too_small)} do not fit the SRAM" if max(too_small) < g
                     else f"{len(too_small)} candidate grids do not fit the SRAM")
    others = sorted((c for c in fitting if c is not best), key=lambda c: c["cycles"])
    if others:
        o = others[0]
        share = best["comm_cycles"] / max(best["cycles"], 1e-9)
        parts.append(f"next best {o['grid']}x{o['grid']} is {o['cycles'] / best['cycles']:.3f}x slower "
                     f"({'more compute per core' if o['grid'] < g else 'longer allreduces'}); communication is "
                     f"{share:.0%} of the time here")
    return "; ".join(parts)
