"""A loop nest replayed on a systolic array: its DRAM and SRAM counts and its array cycles.

Why here (the engine side) and not in the mapper: the tiling mapper (``mappers/tiling``) only
chooses a ``LoopNest``; the engine replays it, so a chosen nest and a saved one are costed by
the same code, and the simulator never imports a mapper.

The hierarchy (``array_hierarchy``) is SCALE-Sim's view of the chip: the PEs (one word of each
operand), the three operand SRAMs (each double buffered, as SCALE-Sim halves them) with the
array's rows and columns fanning out below them, and DRAM at the spec's bandwidth. With
``dataflow_only`` (what the hardware allows) the rows unroll only the dataflow's ``Sr`` rank and
the columns only its ``Sc`` rank (os: M on rows, N on columns; ws: K, N; is: K, M; SCALE-Sim's
table, Samajdar et al., ISPASS 2020, Sec. III); the tile sizes, the loop orders and how much of
each edge is used are the mapping's.

Traffic per level and tensor: ``accelsim.engines.loopnest.evaluate`` (one tile per level).

Array cycles: the array holds a tile of the stationary operand (os: the outputs, ws: the
filter, is: the ifmap) while the stream rank ``T`` flows through it. A *fold* is a run of
consecutive iterations of all temporal loops (DRAM and SRAM, outermost first) during which the
stationary tile does not change: its length is the innermost run of loops over ranks that do
not index the stationary operand (``trailing_run``), so ``folds = temporal iterations / run``.
Each fold costs its stream length plus SCALE-Sim's fill and drain (``rows + cols - 2`` for os,
``2 rows + cols - 2`` for ws and is: the stationary block is loaded first), on the whole array
as SCALE-Sim's padded demand does. For SCALE-Sim's own fold order this equals
``simulate_gemm``'s ``busy_cycles`` exactly (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.engines.loopnest import NestCost, evaluate, trailing_run
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    StorageLevel,
    problem_for,
    tensor_roles,
    validate_nest,
)

# dataflow -> (rank on the rows Sr, rank on the columns Sc, streamed rank T), SCALE-Sim's table
DATAFLOW_RANKS: dict[str, tuple[str, str, str]] = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"),
                                                   "is": ("k", "m", "n")}
STATIONARY_ROLE: dict[str, str] = {"os": "C", "ws": "B", "is": "A"}


def array_hierarchy(spec: SystolicAccelerator, dataflow_only: bool = True) -> Hierarchy:
    """PEs, operand SRAMs (rows and columns below them), DRAM; see the module doc."""
    wb = spec.word_bytes
    sr, sc, _ = DATAFLOW_RANKS[spec.array.dataflow]
    rows_ranks = frozenset({sr}) if dataflow_only else None
    cols_ranks = frozenset({sc}) if dataflow_only else None
    pe = StorageLevel("pe", capacity_by_tensor={"A": wb, "B": wb, "C": wb})
    sram = StorageLevel("sram", capacity_by_tensor={"A": spec.sram.ifmap_bytes, "B": spec.sram.filter_bytes,
                                                    "C": spec.sram.ofmap_bytes},
                        read_pj_per_byte=spec.sram_read_energy_pj_per_byte,
                        write_pj_per_byte=spec.sram_write_energy_pj_per_byte, double_buffered=True,
                        fanouts=(Fanout("rows", spec.array.rows, allowed_ranks=rows_ranks),
                                 Fanout("cols", spec.array.cols, allowed_ranks=cols_ranks)))
    dram = StorageLevel("dram", bandwidth_bytes_per_cycle=spec.dram_bytes_per_cycle,
                        read_pj_per_byte=spec.dram.read_energy_pj_per_byte,
                        write_pj_per_byte=spec.dram.write_energy_pj_per_byte)
    return Hierarchy(spec.name, (pe, sram, dram), spec.clock_hz, spec.mac_energy_pj)


def fold_overhead_cycles(spec: SystolicAccelerator) -> int:
    """Fill and drain of one fold beyond its stream length (SCALE-Sim's per-fold cycles minus T)."""
    rows, cols = spec.array.rows, spec.array.cols
    return rows + cols - 2 if spec.array.dataflow == "os" else 2 * rows + cols - 2


@dataclass(frozen=True)
class ArrayNestCost:
    """A nest on the array: the loop-nest counts plus the array's folds and busy cycles."""

    cost: NestCost
    folds: int
    busy_cycles: int

    @property
    def dram_bytes(self) -> int:
        return self.cost.dram_bytes


def array_cycles(nest: LoopNest, problem: LoopProblem, spec: SystolicAccelerator) -> tuple[int, int]:
    """(folds, busy cycles) of ``nest`` on the array (module doc)."""
    problem = problem_for(nest, problem)
    role = STATIONARY_ROLE[spec.array.dataflow]
    stationary = next(t for t, r in zip(problem.tensors, tensor_roles(problem).values()) if r == role)
    loops = [x for lv in nest.levels for x in lv.temporal]  # outermost first, across levels
    temporal = math.prod(f for _, f in loops)
    folds = temporal // trailing_run(loops, stationary)
    return folds, temporal + folds * fold_overhead_cycles(spec)


def replay(nest: LoopNest, problem: LoopProblem, spec: SystolicAccelerator) -> ArrayNestCost:
    """Validate ``nest`` against what the array allows, then count it (raises AccelsimError)."""
    hierarchy = array_hierarchy(spec)
    validate_nest(nest, problem, hierarchy)
    folds, busy = array_cycles(nest, problem, spec)
    return ArrayNestCost(evaluate(nest, problem, hierarchy), folds, busy)


def fold_order_nest(problem: LoopProblem, spec: SystolicAccelerator) -> LoopNest | None:
    """SCALE-Sim's fixed schedule as a nest of ``array_hierarchy``, or None (not expressible).

    Column folds outer, row folds inner (at DRAM: a fold's tiles are what the SRAMs hold), the
    stream rank at the SRAMs, the two spatial ranks filling rows and columns. None when the
    spatial extents are not multiples of the array (divisor tiles only) or there is a batch.
    """
    ext = {r: problem.extents.get(r, 1) for r in "mkn"}
    if problem.extents.get("b", 1) != 1:
        return None
    rows, cols = spec.array.rows, spec.array.cols
    sr, sc, t = DATAFLOW_RANKS[spec.array.dataflow]
    if ext[sr] % rows or ext[sc] % cols:
        return None
    dram = tuple((r, f) for r, f in ((sc, ext[sc] // cols), (sr, ext[sr] // rows)) if f > 1)
    sram = ((t, ext[t]),) if ext[t] > 1 else ()
    spatial = {name: {r: size} for name, r, size in (("rows", sr, rows), ("cols", sc, cols)) if size > 1}
    return LoopNest(problem.name, dict(problem.extents), (LevelLoops("dram", dram), LevelLoops("sram", sram, spatial),
                                                          LevelLoops("pe", ())))
