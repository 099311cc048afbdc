"""A systolic-array accelerator: MAC arrays (one per core), three operand SRAMs, a vector unit, DRAM.

The shape follows SCALE-Sim's view of a systolic accelerator (separate ifmap, filter and ofmap
scratchpads, double buffered, fed from DRAM), so its configuration files map onto it directly.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from accelsim.fieldchecks import ClockHz
from accelsim.hardware.base import HardwareSpec, MemoryLevel, Spec, register_kind
from accelsim.hardware.units import ChipLinks, VectorUnit

Dataflow = Literal["os", "ws", "is"]
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")


class SystolicArray(Spec):
    rows: int = Field(gt=0, description="PE rows (SCALE-Sim ArrayHeight)")
    cols: int = Field(gt=0, description="PE columns (SCALE-Sim ArrayWidth)")
    dataflow: Dataflow = Field(description="os (output-), ws (weight-) or is (input-stationary)")


class OperandBuffers(Spec):
    """Per-operand SRAM capacities; each is double buffered, so half holds the working set."""

    ifmap_bytes: int = Field(gt=0)
    filter_bytes: int = Field(gt=0)
    ofmap_bytes: int = Field(gt=0)


@register_kind("systolic")
class SystolicAccelerator(HardwareSpec):
    kind: Literal["systolic"] = "systolic"
    clock_hz: ClockHz = Field(description="bounds: accelsim.fieldchecks")
    word_bytes: int = Field(default=1, gt=0, description="bytes per operand element")
    array: SystolicArray
    sram: OperandBuffers
    dram: MemoryLevel
    mac_energy_pj: float = Field(default=0.0, ge=0, description="energy of one MAC")
    sram_read_energy_pj_per_byte: float = Field(default=0.0, ge=0)
    sram_write_energy_pj_per_byte: float = Field(default=0.0, ge=0)
    cores: int = Field(default=1, gt=0, le=4096, description="identical arrays, each with its own SRAMs, sharing DRAM")
    vector: VectorUnit | None = Field(default=None, description="runs norms, softmax, activations, residual adds")
    links: ChipLinks | None = Field(default=None, description="chip-to-chip links for tensor parallelism")

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bytes_per_cycle(self.clock_hz)

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.array.rows * self.array.cols
