"""WaferLLM's measurement convention: one decoder layer per compile, scaled by the layer count.

Why a separate convention: WaferLLM's published decode and prefill numbers come from compiling
ONE decoder layer onto a P x P grid and multiplying its time by the layer count (``layer_num`` is
in the model JSON but never passed to the compiler, MeshInfra/WaferLLM @ 2cd13b5 Decode/WSE-2;
/work/shared/reference/PIM_WAFER.md §4.1). The weights of the other layers are not resident and
the time to bring them in is not charged. That is a different question from the default
placement (every layer's weights and KV cache resident in the wafer's SRAM), so it is never the
default and every report made with it says so in ``convention``.

What is modelled: each distinct part of the model (embedding, each distinct block, LM head) is
placed alone on one g x g grid (one region, the whole grid for that part); its SRAM need is that
part's weights plus its KV cache plus its activations and kernel buffers, checked against the
core's SRAM. The step time is the sum over parts of one part's time times its repeat count.
NOT charged, by construction of the convention: loading the other layers' weights, and the
hand-off of the hidden state between layers. All parts use the same grid, as WaferLLM compiles
every layer of a model at one P; without a given grid the fastest grid on which every part fits
alone is chosen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim.engines.mesh.placement import (PartSpec, Placement, WaferPlan, candidate_grids, fitting_placement, parts_of, plan,
                                             tokens_of)
from accelsim.errors import AccelsimError
from accelsim.ir import Graph, ModelGraph, Part

RESIDENT_CONVENTION = "all layers resident: every layer's weights and KV cache in the cores' SRAM"


def convention_text(layers: int) -> str:
    """The label every layer-at-a-time report carries (``layers``: decoder layers simulated)."""
    return (f"one layer per compile, x {layers} layers; weights of other layers not resident "
            f"(WaferLLM's measurement)")


@dataclass(frozen=True)
class LayerRun:
    """One part placed alone: its plan (repeat 1) and how many times the step runs it."""

    part: str
    repeat: int
    plan: WaferPlan


def single_part(workload: Any, name: str) -> Any:
    """The workload reduced to one copy of part ``name`` (what one compile holds)."""
    if isinstance(workload, Graph):
        return workload
    part = next(p for p in workload.parts if p.name == name)
    return ModelGraph(f"{workload.name}.{name}", [Part(part.name, part.graph, 1, part.input, part.output)],
                      workload.config, dict(workload.meta))


NON_LAYER_PARTS = frozenset({"embed", "head", "position_bias", "encoder_norm"})  # workloads.transformer part names


def _decoder_layers(workload: Any) -> int:
    """Layers the label counts: the repeats of every block part (dense and MoE blocks, encoder and
    decoder), not the embedding or head; a bare Graph is one layer."""
    return sum(p.repeat for p in parts_of(workload) if p.name not in NON_LAYER_PARTS) or 1


def _runs_at(workload: Any, device, g: int) -> list[LayerRun]:
    return [LayerRun(p.name, p.repeat, plan(single_part(workload, p.name), device, grid=g))
            for p in parts_of(workload)]


def _once(part: PartSpec) -> PartSpec:
    return PartSpec(part.name, part.graph, 1)


def _fits_alone(workload: Any, device, g: int) -> bool:
    """Every part's stored data fits the grid alone (the cheap test; kernel buffers come later)."""
    parts = parts_of(workload)
    tokens = tokens_of(workload, parts)
    return all(fitting_placement([_once(p)], device, g, tokens) is not None for p in parts)


def shortfall(workload: Any, device, grid: int | None = None) -> str | None:
    """None when some grid (or ``grid``) holds every part alone; else which part does not fit and
    how much SRAM it lacks (the message of that part's own placement error)."""
    grids = [grid] if grid is not None else candidate_grids(device)
    if any(_fits_alone(workload, device, g) for g in grids):
        return None
    parts = parts_of(workload)
    tokens = tokens_of(workload, parts)
    for p in parts:  # name the first part that fits no grid alone, with its missing bytes
        if not any(fitting_placement([_once(p)], device, g, tokens) for g in grids):
            try:
                plan(single_part(workload, p.name), device, grid=grid)
            except AccelsimError as error:
                return f"layer {p.name!r} alone {error.detail}"
    return "every part fits some grid alone, but no grid holds each of them"


def layer_plan(workload: Any, device, grid: int | None = None) -> tuple[WaferPlan, list[LayerRun], str]:
    """The step under the one-layer-per-compile convention: a combined plan (rows carry each
    part's repeat), the per-part runs, and the convention label."""
    if grid is not None:
        device.check_grid(grid, grid)
    grids = [grid] if grid is not None else candidate_grids(device)
    tried, errors = [], []
    for g in grids:
        if grid is None and not _fits_alone(workload, device, g):
            errors.append((g, None))
            continue
        try:
            runs = _runs_at(workload, device, g)
        except AccelsimError as error:
            errors.append((g, error))
            continue
        tried.append((sum(r.plan.cycles * r.repeat for r in runs), g, runs))
    if not tried:
        detail = shortfall(workload, device, grid) or next(e.detail for _, e in reversed(errors) if e is not None)
        raise AccelsimError(f"does not fit {device.name} even one layer per compile: {detail}", field="sram",
                            allowed="a smaller model, shorter context or larger device")
    cycles, g, runs = min(tried, key=lambda t: t[0])
    fullest = max(runs, key=lambda r: r.plan.placement.sram_used_bytes).plan.placement
    where = f"{g}x{g} grid, each part alone"
    if grid is not None:
        reason = f"{where}: given by --grid"
    else:
        reason = f"{where}: fastest of {len(tried)} grids on which every part fits alone"
        if errors:
            reason += f"; {len(errors)} candidate grids do not fit a part"
    layers = _decoder_layers(workload)
    total = lambda attr: sum(getattr(r.plan, attr) * r.repeat for r in runs)
    rows = [(cost, r.repeat * rep, part) for r in runs for cost, rep, part in r.plan.rows]
    combined = WaferPlan(runs[0].plan.phase, runs[0].plan.tokens,
                         Placement(g, 1, 1, fullest.sram_used_bytes, fullest.weights_bytes, fullest.kv_bytes,
                                   fullest.activation_bytes, fullest.work_bytes),
                         cycles, total("compute_cycles"), total("comm_cycles"), total("routing_cycles"), 0.0,
                         rows, reason, [{"grid": t[1], "fits": True, "cycles": t[0]} for t in tried]
                         + [{"grid": e[0], "fits": False} for e in errors])
    return combined, runs, convention_text(layers)
