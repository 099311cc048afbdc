"""What one unit of a chip costs for one piece of work: the per-kind half of the accelerator engine.

Why an adapter per kind: the whole-model composition (``compose``) is the same for a systolic
chip and a spatial chip; what differs is how a GEMM maps onto the matrix array and what a
vector op costs. Each adapter answers exactly those questions, from its spec's numbers:

- ``gemm(shape, ifmap_words)``: cycles on the matrix unit (all cores), MACs, DRAM bytes per
  operand when every operand streams from DRAM, and on-chip access energy;
- ``vector_cycles(op, elements)``: cycles on the vector unit (``None`` if it cannot run ``op``);
- clock, DRAM bytes per cycle, activation buffer bytes, links, energy per DRAM byte.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.engines.accelerator.chip_base import (
    MAPPERS,
    Chip,
    GemmWork,
    default_gemm_mapper,
)
from accelsim.engines.accelerator.spatial_chip import SpatialChip
from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape

__all__ = ["MAPPERS", "Chip", "GemmWork", "SpatialChip", "SystolicChip", "chip_for"]


@dataclass(frozen=True)
class _ShareCost:
    """One core's share of a GEMM, as placed: busy cycles, DRAM words per operand, SRAM bytes."""

    busy_cycles: float
    dram_words: dict[str, float]
    sram_read_bytes: float
    sram_write_bytes: float
    macs: float
    mapper: str


_SHARE_CACHE: dict[tuple, _ShareCost] = {}
def _given(pj: float) -> float | None:
    """A spec energy of 0 is the default "not given" (no physical action is free), so unknown."""
    return pj if pj > 0 else None


class SystolicChip(Chip):
    """``cores`` identical SCALE-Sim-style arrays (each with its own operand SRAMs) sharing DRAM.

    A GEMM runs on every core at once: the batch is split across cores when it has at least as
    many elements, otherwise the N (filter columns) dimension; each core's share runs through
    ``simulate_gemm`` (exact SCALE-Sim compute cycles), so cycles are the slowest core's busy
    cycles and DRAM bytes the sum over cores (each core reads the operand it does not split).
    Activations stay in the ifmap SRAM (the unified buffer on TPU-v1) when they fit half of it.

    ``mapper="tiling"`` (the default): each core's share is placed by the default mapper of the
    kind (entry point ``accelsim.default_mappers: systolic``, ``mappers.tiling.systolic``), which
    returns a loop nest or keeps SCALE-Sim's fold order when no nest beats it; a nest is replayed
    here (``accelsim.engines.systolic.nest``: loop-nest traffic, array cycles with fill and drain).
    ``mapper="fixed"``: SCALE-Sim's fold order for every GEMM (``simulate_gemm``), as before.
    Placements are cached per distinct share shape: a transformer repeats its GEMMs.
    """

    def __init__(self, spec: SystolicAccelerator, mapper: str = "tiling") -> None:
        if mapper not in MAPPERS:
            raise AccelsimError(f"unknown GEMM mapper {mapper!r}", field="options.mapper", allowed=MAPPERS)
        self.mapper = mapper
        self._map = None
        self._keys: dict[int, str] = {}
        self.spec = spec
        self.clock_hz = spec.clock_hz
        self.dram_bytes_per_cycle = spec.dram_bytes_per_cycle
        self.activation_buffer_bytes = spec.sram.ifmap_bytes * spec.cores  # every core's ifmap SRAM
        self.links = spec.links
        self.cores = spec.cores
        self.peak_macs_per_cycle = spec.peak_macs_per_cycle * spec.cores
        self.dram_capacity_bytes = spec.dram.capacity_bytes
        self._by_dtype: dict[int, SystolicAccelerator] = {}
        self.dram_read_pj_per_byte = _given(spec.dram.read_energy_pj_per_byte)
        self.dram_write_pj_per_byte = _given(spec.dram.write_energy_pj_per_byte)

    def _shares(self, shape: GemmShape) -> list[tuple[GemmShape, int]]:
        """The cores' shares of the GEMM as (share, how many cores run it): the batch split across
        cores when it has at least as many elements, else N; the last share is the remainder, so
        no core computes (or moves) padding."""
        c = self.cores
        if c == 1:
            return [(shape, 1)]
        split_batch = shape.batch >= c
        total = shape.batch if split_batch else shape.n
        per = math.ceil(total / c)
        full, rest = divmod(total, per)

        def share(size: int) -> GemmShape:
            b, n = (size, shape.n) if split_batch else (shape.batch, size)
            return GemmShape(shape.m, shape.k, n, b, shape.ifmap, shape.filter, shape.ofmap)

        return [(share(per), full)] + ([(share(rest), 1)] if rest else [])

    def _spec_for(self, dtype_bytes: int) -> SystolicAccelerator:
        """The spec with words of the data's element size: SRAM capacities stay in bytes, so a
        2-byte model on a 1-byte array holds half as many elements (the MAC rate is kept)."""
        if dtype_bytes == self.spec.word_bytes:
            return self.spec
        if dtype_bytes not in self._by_dtype:
            self._by_dtype[dtype_bytes] = self.spec.model_copy(update={"word_bytes": dtype_bytes})
        return self._by_dtype[dtype_bytes]

    def _share(self, share: GemmShape, hw: SystolicAccelerator, ifmap_words: int | None,
               offchip: tuple[float, float, float]) -> _ShareCost:
        """One core's share: SCALE-Sim's fold order, or what the default mapper placed (cached)."""
        from accelsim.engines.systolic import simulate_gemm

        wb = hw.word_bytes
        if wb not in self._keys:
            self._keys[wb] = hw.model_dump_json()
        key = (self._keys[wb], self.mapper, share.m, share.k, share.n, share.batch, ifmap_words,
               offchip if self.mapper == "tiling" else None)
        if key in _SHARE_CACHE:
            return _SHARE_CACHE[key]
        row = simulate_gemm(share, hw, ifmap_words=ifmap_words)
        dram = row["dram_bytes"]
        ofmap_write = row["dram_write_bytes"]
        fold = _ShareCost(float(row["busy_cycles"]), {
            "ifmap": dram["ifmap"] / wb, "filter": dram["filter"] / wb,
            "ofmap_read": (dram["ofmap"] - ofmap_write) / wb, "ofmap_write": ofmap_write / wb},
            sum(row["sram_reads"].values()) * wb, sum(row["sram_writes"].values()) * wb, row["macs"],
            "fixed" if self.mapper == "fixed" else "fold order")
        result = fold
        if self.mapper == "tiling":
            from accelsim.engines.systolic.nest import replay
            from accelsim.tiling import LoopProblem

            if self._map is None:
                self._map = default_gemm_mapper("systolic")
            problem = LoopProblem.gemm(share.m, share.k, share.n, share.batch, wb)
            out_bytes = share.batch * share.m * share.n * wb
            # the fold order's bytes as lowering counts them (operands kept on chip do not reach DRAM)
            offchip_bytes = (offchip[0] * dram["ifmap"] + offchip[1] * dram["filter"] + dram["ofmap"]
                             - out_bytes * (1 - offchip[2]))
            nest, _ = self._map(problem, hw, offchip_bytes, row["busy_cycles"], offchip)
            if nest is not None:  # the engine counts the nest, not the mapper
                c = replay(nest, problem, hw)
                rd, wr = c.cost.reads_bytes[c.cost.dram_level], c.cost.writes_bytes[c.cost.dram_level]
                result = _ShareCost(float(c.busy_cycles), {"ifmap": rd["A"] / wb, "filter": rd["B"] / wb,
                                                           "ofmap_read": rd["C"] / wb, "ofmap_write": wr["C"] / wb},
                                    sum(c.cost.reads_bytes["sram"].values()), sum(c.cost.writes_bytes["sram"].values()),
                                    c.cost.macs, "tiling")
        if len(_SHARE_CACHE) > 4096:
            _SHARE_CACHE.clear()
        _SHARE_CACHE[key] = result
        return result

    def gemm(self, shape: GemmShape, ifmap_words: int | None, dtype_bytes: int | None = None,
             offchip: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> GemmWork:
        hw = self._spec_for(dtype_bytes or self.spec.word_bytes)
        read_pj, write_pj = _given(hw.sram_read_energy_pj_per_byte), _given(hw.sram_write_energy_pj_per_byte)
        mac_pj = _given(hw.mac_energy_pj)
        cycles = 0.0
        words = {"ifmap": 0.0, "filter": 0.0, "ofmap_read": 0.0, "ofmap_write": 0.0}
        energy: dict[str, float | None] = {"mac": 0.0, "sram_read": 0.0, "sram_write": 0.0}
        placed: set[str] = set()
        for share, cores in self._shares(shape):
            one = self._share(share, hw, ifmap_words, offchip)
            placed.add(one.mapper)
            cycles = max(cycles, one.busy_cycles)  # the slowest core sets the time
            for op, w in one.dram_words.items():
                words[op] += cores * w
            for key, pj, count in (("mac", mac_pj, one.macs), ("sram_read", read_pj, one.sram_read_bytes),
                                   ("sram_write", write_pj, one.sram_write_bytes)):
                energy[key] = None if pj is None or energy[key] is None else energy[key] + cores * count * pj
        return GemmWork(cycles, float(shape.macs), words, energy, "+".join(sorted(placed)))

    @property
    def vector_elements_per_cycle(self) -> float:
        return float(self.spec.vector.lanes * self.cores) if self.spec.vector else 0.0

    def vector_cycles(self, op: str, elements: float) -> float | None:
        v = self.spec.vector
        if v is None or not v.can_run(op):
            return None
        return elements * v.cycles_per_element[op] / (v.lanes * self.cores)

    def vector_energy_pj(self, op: str, elements: float) -> float | None:
        v = self.spec.vector
        if v is None or op not in v.energy_pj_per_element:
            return None
        return elements * v.energy_pj_per_element[op]

    @property
    def vector_ops(self) -> list[str]:
        return sorted(self.spec.vector.cycles_per_element) if self.spec.vector else []


def chip_for(spec: HardwareSpec, mapper: str = "tiling") -> Chip:
    """The chip model of ``spec``; ``mapper`` places its GEMMs (``SystolicChip``, ``SpatialChip``)."""
    if isinstance(spec, SystolicAccelerator):
        return SystolicChip(spec, mapper)
    if isinstance(spec, SpatialAccelerator):
        return SpatialChip(spec, mapper)
    raise AccelsimError(f"no accelerator model for kind {spec.kind!r}", field="hardware.kind",
                        allowed=["systolic", "spatial"])
