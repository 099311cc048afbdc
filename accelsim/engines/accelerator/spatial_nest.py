"""A loop nest replayed on a spatial (FuseMax/FLAT-style) chip: its DRAM traffic and 2D-array cycles.

Why here (the engine side): the spatial kind's default mapper (``mappers/tiling/spatial.py``,
entry point ``accelsim.default_mappers: spatial``) only chooses a ``LoopNest``; this module
checks it against what the chip allows and counts it, so the simulator never imports a mapper.

The hierarchy (``buffer_hierarchy``):

* the PEs, one word of each operand (the output-stationary partial sum, the A and B values
  passing through);
* the single global buffer, shared by all three operands (one capacity, the spec's
  ``global_buffer.capacity_bytes``) and double buffered (both halves hold a tile, as the systolic
  path assumes of its SRAMs). Below it the 2D array: ``rows`` unrolls M only and ``cols`` N only
  (the FuseMax 2D array computes a ``rows x cols`` output tile per contracted step: output
  stationary over M x N; Nayak et al., MICRO 2024, Sec. 6 and the artifact's Timeloop
  mapping). Both edges are *wave* fanouts: a buffer tile of ``tm x tn`` outputs runs as
  ``ceil(tm / rows) * ceil(tn / cols)`` array tiles one after another (partial edges idle);
* DRAM at the spec's bandwidth.

Traffic per level and tensor: ``accelsim.engines.loopnest.evaluate`` (one tile per level).

Cycles: the FuseMax artifact's convention applied to every buffer tile: each array tile takes
its contracted extent ``K`` in MAC op-cycles, so a nest takes ``temporal iterations x waves x
mac.cycles`` (``NestCost.compute_cycles`` times the MAC's op cycles). For a nest whose buffer
tile holds all of M and N (or multiples of the array) this is exactly the artifact's
``batch * ceil(M/rows) * ceil(N/cols) * K``; smaller tiles that leave array edges partly idle
cost more, never less (ceil is subadditive).
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.engines.loopnest import NestCost, evaluate
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LoopNest,
    LoopProblem,
    StorageLevel,
    validate_nest,
)


def buffer_hierarchy(spec: SpatialAccelerator, word_bytes: int | None = None) -> Hierarchy:
    """PEs, the shared double-buffered global buffer (2D array below it), DRAM; see the module doc.

    ``word_bytes``: the data's element size (a PE holds one element of each operand)."""
    wb = word_bytes or spec.word_bytes
    a2 = spec.array_2d
    pe = StorageLevel("pe", capacity_by_tensor={"A": wb, "B": wb, "C": wb})
    buffer = StorageLevel("buffer", capacity_bytes=spec.buffer_bytes,
                          read_pj_per_byte=spec.energy.buffer_read_pj_per_byte,
                          write_pj_per_byte=spec.energy.buffer_write_pj_per_byte, double_buffered=True,
                          fanouts=(Fanout("rows", a2.rows, waves=True, allowed_ranks=frozenset({"m"})),
                                   Fanout("cols", a2.cols, waves=True, allowed_ranks=frozenset({"n"}))))
    dram = StorageLevel("dram", bandwidth_bytes_per_cycle=spec.dram.bytes_per_cycle(spec.clock_hz),
                        read_pj_per_byte=spec.energy.dram_pj_per_byte, write_pj_per_byte=spec.energy.dram_pj_per_byte)
    mac_pj = spec.energy.compute_pj.get("mac", 0.0)
    return Hierarchy(spec.name, (pe, buffer, dram), spec.clock_hz, mac_pj)


@dataclass(frozen=True)
class SpatialNestCost:
    """A nest on the chip: the loop-nest counts plus the 2D array's op-cycles."""

    cost: NestCost
    cycles: int

    @property
    def dram_bytes(self) -> int:
        return self.cost.dram_bytes


def replay(nest: LoopNest, problem: LoopProblem, spec: SpatialAccelerator) -> SpatialNestCost:
    """Validate ``nest`` (levels, ranks, unrolling onto the array, the shared buffer's capacity
    with double buffering; raises AccelsimError naming the level and sizes), then count it."""
    dtype = max(t.dtype_bytes for t in problem.tensors)
    hierarchy = buffer_hierarchy(spec, dtype)
    validate_nest(nest, problem, hierarchy)
    cost = evaluate(nest, problem, hierarchy)
    return SpatialNestCost(cost, cost.compute_cycles * spec.array_2d.cost("mac").cycles)
