"""A multicore accelerator: N cores, each with matrix arrays, a vector unit and local memory
levels; shared on-chip levels (an L2); DRAM/HBM.

Why its own kind: a GPU seen as a loop-nest machine (LLMCompass's device > core > systolic
array + vector unit hierarchy; Zhang et al., ISCA 2024) is this shape, and so is a many-core NPU.
The roofline ``gpu`` kind knows only peaks; this one knows capacities and bandwidths per level,
so the tiling mapper can choose loop nests and the traffic per level follows from them.

Every level gives its capacity per instance (per core for core levels), its bandwidth per
instance (bytes per cycle; ``None`` = not a bottleneck, for registers whose ports are sized by
design to feed the arrays) and its energy per byte. ``hierarchy()`` turns the spec into the
``accelsim.tiling.Hierarchy`` the mapper and the loop-nest engine use: the arrays (and the
arrays in a core) fan out below the innermost core level, the cores below the innermost
shared level (or DRAM) as a grid run in waves.

Achievable fractions (``compute_efficiency``, ``memory_efficiency``; the names and bounds of the
``gpu`` kind, ``accelsim.fieldchecks.Efficiency``): the datasheet peaks stay the citable numbers
and what a real kernel sustains is a separate, visible field. ``compute_efficiency`` scales the
arrays' and the vector units' rates (not the on-chip memory ports, which keep their bytes per
second); ``memory_efficiency`` scales the DRAM bandwidth for reads and writes alike. Both reach the
tiling mapper through ``hierarchy()``, whose cycles are then *array steps* at the sustained rate
(``array_clock_hz``), so the mapper optimises the cost the engine reports. At 1.0 every number is
the datasheet's.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import Efficiency
from accelsim.hardware.base import HardwareSpec, MemoryLevel, Spec, register_kind
from accelsim.tiling import Fanout, Hierarchy, StorageLevel

OUTPUT_RANKS = frozenset({"b", "m", "n"})  # ranks the cores split (no cross-core reduction)


class ArrayShape(Spec):
    rows: int = Field(gt=0, description="MAC rows of one array")
    cols: int = Field(gt=0, description="MAC columns of one array")


class LocalLevel(Spec):
    """One on-chip level: capacity and bandwidth per instance, energy per byte."""

    name: str
    capacity_bytes: int = Field(gt=0)
    bandwidth_bytes_per_cycle: float | None = Field(default=None, gt=0)
    read_energy_pj_per_byte: float = Field(default=0.0, ge=0)
    write_energy_pj_per_byte: float = Field(default=0.0, ge=0)
    double_buffered: bool = Field(default=False, description="tiles take twice their size (load next while computing)")


class Core(Spec):
    arrays: int = Field(gt=0, description="matrix arrays per core")
    array: ArrayShape
    vector_flops_per_cycle: float = Field(gt=0, description="vector-unit FLOPs per cycle per core")
    levels: list[LocalLevel] = Field(min_length=1, description="per-core levels, innermost first")


@register_kind("multicore")
class MulticoreAccelerator(HardwareSpec):
    kind: Literal["multicore"] = "multicore"
    clock_hz: float = Field(gt=0)
    cores: int = Field(gt=0)
    core: Core
    shared_levels: list[LocalLevel] = Field(default_factory=list, description="shared on-chip levels, innermost first")
    dram: MemoryLevel
    mac_energy_pj: float = Field(default=0.0, ge=0)
    vector_energy_pj_per_flop: float = Field(default=0.0, ge=0)
    launch_overhead_s: float = Field(default=0.0, ge=0, description="fixed time per operator (kernel launch)")
    interconnect_bytes_per_s: float | None = Field(
        default=None, gt=0, description="per-device one-direction link bandwidth to the tensor-parallel peers "
        "(NVLink); None: a single device, all-reduces are refused")
    compute_efficiency: Efficiency = Field(
        default=1.0, description="fraction of the arrays' and vector units' peak rate a long kernel sustains")
    memory_efficiency: Efficiency = Field(
        default=1.0, description="fraction of the DRAM bandwidth a streaming kernel sustains (reads and writes)")

    @model_validator(mode="after")
    def _check(self) -> MulticoreAccelerator:
        names = [lv.name for lv in (*self.core.levels, *self.shared_levels)] + [self.dram.name]
        if len(set(names)) != len(names):
            raise AccelsimError(f"memory level names repeat: {names}", field="levels")
        if self.dram.bandwidth_bytes_per_s is None and self.dram.bandwidth_bytes_per_cycle is None:
            raise AccelsimError("DRAM needs a bandwidth", field="dram",
                                allowed="bandwidth_bytes_per_s or bandwidth_bytes_per_cycle")
        return self

    @property
    def dram_bytes_per_cycle(self) -> float:
        """Datasheet DRAM bytes per (nominal) clock cycle."""
        return self.dram.bytes_per_cycle(self.clock_hz)

    @property
    def dram_bytes_per_s(self) -> float:
        """Achievable DRAM bandwidth: the datasheet's times ``memory_efficiency``."""
        return self.dram_bytes_per_cycle * self.clock_hz * self.memory_efficiency

    @property
    def array_clock_hz(self) -> float:
        """Array steps per second at the sustained rate: the clock times ``compute_efficiency``."""
        return self.clock_hz * self.compute_efficiency

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.cores * self.core.arrays * self.core.array.rows * self.core.array.cols

    @property
    def vector_flops_per_s(self) -> float:
        """Datasheet vector-unit FLOP/s (the engine applies ``compute_efficiency``, as the gpu kind does)."""
        return self.cores * self.core.vector_flops_per_cycle * self.clock_hz

    def hierarchy(self) -> Hierarchy:
        """Storage levels innermost first, with the arrays' and the cores' fanouts.

        Its cycles are array steps at ``array_clock_hz``: each level's bandwidth is given per step
        (an on-chip port's per-clock figure over ``compute_efficiency``, DRAM's per-clock figure times
        ``memory_efficiency`` over ``compute_efficiency``), so ``latency_cycles / hierarchy.clock_hz``
        is seconds."""
        array_fanouts = tuple(f for f in (Fanout("arrays", self.core.arrays), Fanout("rows", self.core.array.rows),
                                          Fanout("cols", self.core.array.cols)) if f.size > 1)
        core_fanout = (Fanout("cores", self.cores, waves=True, allowed_ranks=OUTPUT_RANKS),) if self.cores > 1 else ()
        per_step = 1.0 / self.compute_efficiency  # nominal cycles per array step
        local = [_level(lv, per_step) for lv in self.core.levels]
        shared = [_level(lv, per_step) for lv in self.shared_levels]
        dram_per_step = self.dram_bytes_per_cycle * self.memory_efficiency * per_step
        dram = StorageLevel(self.dram.name, self.dram.capacity_bytes, None, dram_per_step,
                            self.dram.read_energy_pj_per_byte, self.dram.write_energy_pj_per_byte)
        chain = [*local, *shared, dram]
        chain[0] = _with_fanouts(chain[0], array_fanouts)
        outer = len(local)  # first level above the cores
        chain[outer] = _with_fanouts(chain[outer], core_fanout)
        return Hierarchy(self.name, tuple(chain), self.array_clock_hz, self.mac_energy_pj)


def _level(lv: LocalLevel, cycles_per_step: float) -> StorageLevel:
    bandwidth = None if lv.bandwidth_bytes_per_cycle is None else lv.bandwidth_bytes_per_cycle * cycles_per_step
    return StorageLevel(lv.name, lv.capacity_bytes, None, bandwidth, lv.read_energy_pj_per_byte,
                        lv.write_energy_pj_per_byte, lv.double_buffered)


def _with_fanouts(level: StorageLevel, fanouts: tuple[Fanout, ...]) -> StorageLevel:
    from dataclasses import replace

    return replace(level, fanouts=level.fanouts + fanouts)
