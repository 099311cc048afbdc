"""Cycle-level systolic-array engine: output-, weight- and input-stationary GEMMs with folds.

What it models
--------------
A GEMM ``ofmap[M,N] = ifmap[M,K] @ filter[K,N]`` (a convolution arrives already lowered to
this form, im2col, M = output pixels, K = R*S*C, N = filters) runs on a ``rows x cols`` array.
Each dataflow pins one operand in the array and streams the others, exactly as SCALE-Sim 3.0
describes it (Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
Accelerators using SCALE-Sim", ISPASS 2020, Sec. III), which gives the spatial sizes Sr, Sc and
the temporal size T:

====  =====  =====  =====  ===========================================
flow  Sr     Sc     T      pinned in the array
====  =====  =====  =====  ===========================================
os    M      N      K      the outputs (one output per PE)
ws    K      N      M      a K x N block of the filter
is    K      M      N      a K x M block of the (im2col) ifmap
====  =====  =====  =====  ===========================================

The work splits into ``ceil(Sr/rows) * ceil(Sc/cols)`` folds, visited column fold outer, row
fold inner (SCALE-Sim's order). Each fold streams ``T`` vectors through the skewed array and
then waits for fill and drain, so every fold costs a fixed number of cycles ``c``:
``T + rows + cols - 2`` for os (operands skew in over rows+cols-2 cycles while the outputs
accumulate in place) and ``2*rows + cols + T - 2`` for ws and is (``rows`` cycles to load the
stationary block, then the skewed stream and the drain). SCALE-Sim reports as its stall-free
cycle count the index of the last cycle, ``folds * c - 1``; we report the same number as
``compute_cycles`` so the two tools agree exactly.

SRAM accesses (words) come from what each fold streams over the array edges: os reads the
ifmap once per column fold and the filter once per row fold; ws reads the ifmap once per
column fold and every filter word once; is reads every ifmap word once and the filter once
per column fold. Outputs: os writes each output once; ws and is write a partial sum for every
row fold and read it back for every row fold after the first (accumulation).

DRAM traffic comes from double-buffered operand SRAMs: half of each SRAM (``B``) holds the
working set, the other half receives the next fold's data while the current fold computes.
The scratchpad is software managed and knows the schedule, so it keeps data that will be used
again and drops data that will not. Per operand the fold sequence touches tiles in one of
three patterns, each with a closed form (checked against an explicit tile-residency state
machine in the reference path):

* cycled (os ifmap, ws ifmap, is filter): the inner loop walks ``D`` bytes of distinct tiles,
  repeated for each outer iteration ``r`` times. The first ``B`` bytes stay resident, the rest
  stream: ``D + (r - 1) * max(0, D - B)``.
* held (os filter; ws/is ofmap partial sums): one tile of ``S`` bytes is used by ``h``
  consecutive folds; what does not fit is re-streamed (or, for partial sums, spilled and read
  back) ``h - 1`` times: ``S + (h - 1) * max(0, S - B)``.
* once (ws filter, is ifmap, os ofmap): every tile is touched by one fold only: compulsory.

So DRAM bytes are never below the compulsory bytes, equal them when every operand fits its
buffer half, and never fall as a buffer shrinks. For a convolution the ifmap's distinct words
(the input actually under the sliding window) are fewer than the im2col matrix's M*K; they are
spread over the tiles in proportion to each tile's share of the tiled rank (an integer
apportionment, so per-tile counts are whole words and sum exactly to the footprint). This
apportionment is an approximation of the exact window overlap between tiles.

Stalls come from one shared DRAM channel of ``bw`` bytes per cycle that serves, in order, the
load of fold ``j+1`` (it may start when fold ``j`` starts, since that frees the buffer half) and
the write-back of fold ``j``'s outputs (after fold ``j`` ends). A transfer of ``X`` bytes occupies
the channel for ``X / bw`` cycles (exact rational time, so short transfers share a
cycle). Fold ``j+1`` starts at the first cycle boundary at or after both the end of fold ``j``
and the end of its load; the gap is a stall. The first load (before cycle 0)
and the last write-back (after the last fold) are reported separately as ``prefetch_cycles``
and ``drain_cycles``, matching SCALE-Sim's split between "Total Cycles" and "Total Cycles
(incl. prefetch)".

Two paths compute all of this. ``simulate_gemm_reference`` builds every fold's demand on the
array edges, steps it cycle by cycle for as long as the demand schedules something (a fold's
length is read off its demand, not taken from the formula above; unused lanes of a partial fold
keep their skewed slots, as in SCALE-Sim's padded demand matrices, so every fold holds the array
for the full skew), counting SRAM accesses and busy PEs, runs the tile
residency state machine fold by fold and steps the DRAM channel cycle by cycle; it is for
small shapes and tests. ``simulate_gemm`` uses the closed forms, numpy over the fold grid and
the pipeline recurrence over runs of identical folds (milliseconds for a 256x1024x1024 GEMM).
Property tests prove the two agree exactly, and that the reference demand really computes the
GEMM when executed on numbers.

Deliberate differences from SCALE-Sim 3.0
-----------------------------------------
1. Output-stationary SRAM ofmap writes: SCALE-Sim adds ``rows + cols`` per fold on top of the
   M*N real writes (the size of the padded, flipped demand block, not data). We count the real
   writes only: M*N.
2. ws/is partial-sum reads: SCALE-Sim counts no ofmap SRAM reads; accumulating across row
   folds must read each partial sum back, so we report ``(row_folds - 1) * M * N`` reads.
3. DRAM traffic and stalls use the double-buffer model above with one DRAM bandwidth for all
   operands, not SCALE-Sim's per-operand request-queue trace simulation; total cycles and DRAM
   bytes therefore differ from SCALE-Sim whenever buffers or bandwidth bind. SCALE-Sim's DRAM
   counts are also not physically bounded by the compulsory bytes (they count padded fetch
   lines).
4. Batched GEMMs (``batch > 1``) run as ``batch`` independent SCALE-Sim layers: every count is
   multiplied by ``batch`` (including the per-layer ``- 1`` in ``compute_cycles``).
5. Utilization and seconds use the cycles the array is actually busy, ``busy_cycles = folds * c``
   (plus stalls). SCALE-Sim divides by its Total Cycles, which is one less (the index of the last
   cycle), so its utilization exceeds 100% on degenerate layers (a 1x1 array, or a 1x1x1 GEMM
   reports 0 cycles). ``compute_cycles`` itself keeps SCALE-Sim's convention so it can be compared
   one to one; ``total_cycles = compute_cycles + stall_cycles`` likewise matches SCALE-Sim's
   Total Cycles when there are no stalls.
6. ``mapping_efficiency`` is a fraction in [0, 1] (SCALE-Sim prints a percentage) computed
   from the exact closed form ``Sr*Sc / (folds*rows*cols)``; SCALE-Sim averages per-fold
   floats, so the two agree to floating-point rounding (about 1e-15 relative).
7. A fold's tile larger than its buffer half: the double-buffer model above still loads the
   whole tile before the fold starts (and writes a whole output tile after it), a pipeline that
   cannot physically exist (the tile does not fit the half it is loaded into). The residency
   policy is unchanged, so traffic stays sound (never below compulsory, never rising with a
   bigger buffer), but stalls there are approximate, likely optimistic: a real design would
   stream the tile through the buffer during the fold. Such rows carry
   ``tile_exceeds_buffer = True`` and ``simulate_layers`` lists them in the Report meta.
8. Sizes: every count is an exact integer at any size (int64 where a bound proves it cannot
   overflow, Python integers otherwise); dimensions are limited to 2**53 and a layer to
   ``MAX_FOLDS`` folds, beyond which one AccelsimError explains the limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the package's public face: the fast path, the slow reference, the fold geometry tests check
from accelsim.engines.systolic.fast import simulate_gemm
from accelsim.engines.systolic.geometry import (
    MAX_DIM,
    OPERANDS,
    FoldGeometry,
    apportion,
    fold_edges,
)
from accelsim.engines.systolic.reference import simulate_gemm_reference

__all__ = ["MAX_DIM", "FoldGeometry", "GemmLayer", "apportion", "fold_edges", "ifmap_footprint_words", "simulate_gemm",
           "simulate_gemm_reference", "simulate_graph", "simulate_layers"]
from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import Einsum, GemmShape, Graph, OpKind
from accelsim.report import Report

# --------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------

SUMMED_FIELDS: tuple[str, ...] = (
    "macs", "folds", "compute_cycles", "busy_cycles", "stall_cycles", "total_cycles", "prefetch_cycles", "drain_cycles",
    "end_to_end_cycles", "total_s", "dram_read_bytes", "dram_write_bytes", "energy_pj",
)
SUMMED_PER_OPERAND: tuple[str, ...] = ("sram_reads", "sram_writes", "dram_bytes", "compulsory_dram_bytes")


def ifmap_footprint_words(einsum: Einsum, shape: GemmShape) -> int:
    """Distinct ifmap words one batch element reads: the tensor itself, at most the im2col M*K.

    For a GEMM this is M*K; for a convolution the input tensor is smaller than its im2col matrix
    because neighbouring windows overlap.
    """
    ifmap = next(o.tensor for o in einsum.inputs if o.tensor.name == shape.ifmap)
    return max(1, min(shape.m * shape.k, ifmap.elements // shape.batch))


def totals_of(rows: list[dict[str, Any]], hw: SystolicAccelerator) -> dict[str, Any]:
    """Sum the additive fields; utilization from the sums; mapping efficiency averaged over folds."""
    totals: dict[str, Any] = {"layers": len(rows)}
    for key in SUMMED_FIELDS:
        if any(key in r for r in rows):
            totals[key] = sum(r.get(key, 0) for r in rows)
    for key in SUMMED_PER_OPERAND:
        totals[key] = {op: sum(r[key][op] for r in rows) for op in OPERANDS}
    pe = hw.array.rows * hw.array.cols
    busy, stall = totals["busy_cycles"], totals["stall_cycles"]
    totals["overall_utilization"] = totals["macs"] / ((busy + stall) * pe)
    totals["compute_utilization"] = totals["macs"] / (busy * pe)
    folds = totals.get("folds", 0)
    totals["mapping_efficiency"] = (sum(r["mapping_efficiency"] * r["folds"] for r in rows) / folds
                                    if folds else 0.0)
    return totals


def simulate_graph(graph: Graph, hw: SystolicAccelerator) -> Report:
    """Simulate every two-input multiply-accumulate Einsum of ``graph`` on the array, in schedule order.

    Each such Einsum runs as its GEMM view (``Einsum.as_gemm``; a batch runs as that many GEMMs).
    Other Einsums (softmax pieces, norms, element-wise ops) do not map onto a MAC array; they are
    listed in ``meta['not_mapped']`` with the reason and contribute no cycles.
    """
    if not isinstance(hw, SystolicAccelerator):
        raise AccelsimError(f"needs a systolic accelerator, got kind {getattr(hw, 'kind', type(hw).__name__)!r}",
                            field="hardware", allowed="kind: systolic")
    layers: list[GemmLayer] = []
    not_mapped: list[dict[str, str]] = []
    for einsum in graph.topological_order():
        if einsum.op is not OpKind.MAC or len(einsum.inputs) != 2:
            not_mapped.append({"einsum": einsum.name, "op": einsum.op.value,
                               "reason": "not a two-input multiply-accumulate; no systolic mapping"})
            continue
        shape = einsum.as_gemm()
        layers.append(GemmLayer(einsum.name, shape, ifmap_footprint_words(einsum, shape)))
    if not layers:
        raise AccelsimError("has no two-input multiply-accumulate einsum to run on a systolic array",
                            field=f"graph {graph.name}")
    return simulate_layers(layers, hw, workload=graph.name, meta={"not_mapped": not_mapped})


@dataclass(frozen=True)
class GemmLayer:
    """A named GEMM with its ifmap footprint (distinct words per batch element; None means M*K)."""

    name: str
    shape: GemmShape
    ifmap_words: int | None = None


def simulate_layers(layers: list[GemmLayer], hw: SystolicAccelerator, *, workload: str = "layers",
                    meta: dict[str, Any] | None = None) -> Report:
    """Simulate GEMM layers one after another (SCALE-Sim's topology semantics) into a Report."""
    rows: list[dict[str, Any]] = []
    for layer in layers:
        shape = layer.shape
        row = {"layer": layer.name, "ifmap_tensor": shape.ifmap, "filter_tensor": shape.filter,
               "ofmap_tensor": shape.ofmap}
        try:
            row.update(simulate_gemm(shape, hw, ifmap_words=layer.ifmap_words))
        except AccelsimError as error:  # name the layer: a topology may have hundreds
            raise AccelsimError(error.detail, field=f"layer {layer.name}: {error.field}", allowed=error.allowed,
                                source=error.source) from None
        rows.append(row)
    info = {"engine": "systolic", "dataflow": hw.array.dataflow, **(meta or {})}
    oversized = [r["layer"] for r in rows if r["tile_exceeds_buffer"]]
    if oversized:
        info["tile_exceeds_buffer"] = oversized
        info["note"] = ("in the listed layers one fold's tile exceeds half its SRAM; the model still loads the "
                        "whole tile before the fold starts, so their stall cycles are approximate (optimistic)")
    return Report(workload=workload, hardware=hw.name, layers=rows, totals=totals_of(rows, hw), meta=info)
