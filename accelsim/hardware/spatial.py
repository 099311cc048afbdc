"""A spatial attention accelerator: a 2D PE array, a 1D PE array, a global buffer and DRAM.

Why its own kind: FuseMax and FLAT are both this shape (Nayak et al., MICRO 2024; Kao et al.,
"FLAT", ASPLOS 2023) and differ in what each PE can do and what an operation costs there. So
the spec carries, per array, the cycles each op kind takes and the primitive actions it is made
of (for energy): FuseMax computes ``exp`` on the MAC datapath as 6 MACs + 1 add (7 cycles);
FLAT has a dedicated exponential unit in its 1D array (1 cycle) and its 2D array only does MACs.

Cycle conventions (the FuseMax artifact's Timeloop model): the 2D array processes one
``rows x cols`` tile of an element-wise or reduction Einsum per op-cycle, a MAC Einsum takes
its contracted extent in cycles per tile; the 1D array processes ``pes_1d`` elements per
op-cycle. A reduction down a column of the 2D array that is not interleaved with other work
takes ``rows`` cycles to drain (the stall FuseMax's binding hides).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import ClockHz
from accelsim.hardware.base import HardwareSpec, MemoryLevel, Spec, register_kind
from accelsim.hardware.units import ChipLinks

OP_NAMES = ("mac", "add", "sub", "max", "exp", "div", "mul")


class OpCost(Spec):
    """What one element of an op costs on one PE: cycles, and the primitive actions it fires."""

    cycles: int = Field(gt=0)
    actions: dict[str, int] = Field(default_factory=dict, description="primitive action -> count (energy)")

    @model_validator(mode="after")
    def _counts(self) -> "OpCost":
        bad = {k: v for k, v in self.actions.items() if v < 0}
        if bad:  # a negative count would subtract energy
            raise AccelsimError(f"action counts must be >= 0, got {bad}", field="actions", allowed="integers >= 0")
        return self


class PEArray(Spec):
    """An array of identical PEs and the ops they support."""

    rows: int = Field(gt=0, description="PEs along the key (M0) dimension; 1 for a 1D array")
    cols: int = Field(gt=0, description="PEs along the query (P0) dimension")
    ops: dict[str, OpCost] = Field(description="op kind -> cost; a missing op cannot run on this array")
    pe_area_um2: float = Field(default=0.0, ge=0, description="area of one PE (45 nm)")
    regfile_pj_per_mac: float = Field(default=0.0, ge=0, description="PE register-file energy per MAC (operand reads)")

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def cost(self, op: str) -> OpCost:
        if op not in self.ops:
            raise AccelsimError(f"this array cannot run op {op!r}", field="binding", allowed=sorted(self.ops))
        return self.ops[op]


class ActionEnergy(Spec):
    """Energy per primitive action (pJ), Accelergy-style, 45 nm."""

    compute_pj: dict[str, float] = Field(description="mac, add, max, exp, divide ... -> pJ per action")
    buffer_read_pj_per_byte: float = Field(ge=0)
    buffer_write_pj_per_byte: float = Field(ge=0)
    dram_pj_per_byte: float = Field(ge=0)

    @model_validator(mode="after")
    def _energies(self) -> "ActionEnergy":
        if not self.compute_pj:  # an empty table would cost compute at 0 pJ and report part of the energy
            raise AccelsimError("the table is empty", field="energy.compute_pj",
                                allowed="pJ per action for every action the arrays' ops name")
        bad = {k: v for k, v in self.compute_pj.items() if v < 0}
        if bad:
            raise AccelsimError(f"energies must be >= 0, got {bad}", field="energy.compute_pj", allowed="pJ >= 0")
        return self


@register_kind("spatial")
class SpatialAccelerator(HardwareSpec):
    kind: Literal["spatial"] = "spatial"
    clock_hz: ClockHz = Field(description="bounds: accelsim.fieldchecks")
    word_bytes: int = Field(default=2, gt=0)
    array_2d: PEArray
    array_1d: PEArray
    global_buffer: MemoryLevel
    dram: MemoryLevel
    energy: ActionEnergy
    buffer_area_um2_per_byte: float = Field(default=0.0, ge=0)
    links: ChipLinks | None = Field(default=None, description="chip-to-chip links for tensor parallelism")

    @model_validator(mode="after")
    def _check(self) -> "SpatialAccelerator":
        if self.global_buffer.capacity_bytes is None:
            raise AccelsimError("the global buffer needs a capacity", field="global_buffer.capacity_bytes")
        if self.array_1d.rows != 1:
            raise AccelsimError(f"a 1D array has one row, got {self.array_1d.rows}", field="array_1d.rows")
        for name, array in (("array_2d", self.array_2d), ("array_1d", self.array_1d)):
            unknown = set(array.ops) - set(OP_NAMES)
            if unknown:
                raise AccelsimError(f"unknown ops {sorted(unknown)}", field=f"{name}.ops", allowed=OP_NAMES)
        # One energy convention for this kind: every energy is in ``energy`` (per action, per
        # buffer byte, per DRAM byte); the memory levels carry capacity and bandwidth only, so an
        # energy there would validate and change nothing.
        for level in ("global_buffer", "dram"):
            for f in ("read_energy_pj_per_byte", "write_energy_pj_per_byte"):
                if getattr(getattr(self, level), f):
                    raise AccelsimError(f"the spatial kind reads energies from energy.* only; {level}.{f} would be "
                                        "ignored", field=f"{level}.{f}",
                                        allowed=["energy.buffer_read_pj_per_byte", "energy.buffer_write_pj_per_byte",
                                                 "energy.dram_pj_per_byte"])
        fired = {a for array in (self.array_2d, self.array_1d) for c in array.ops.values() for a in c.actions}
        missing, unused = sorted(fired - set(self.energy.compute_pj)), sorted(set(self.energy.compute_pj) - fired)
        if missing:  # an action with no energy would cost nothing
            raise AccelsimError(f"ops fire actions {missing} that have no energy", field="energy.compute_pj",
                                allowed=sorted(self.energy.compute_pj))
        if unused:  # an energy no op fires would be ignored
            raise AccelsimError(f"no op fires actions {unused}; their energy would be ignored", field="energy.compute_pj",
                                allowed=sorted(fired))
        return self

    @property
    def buffer_bytes(self) -> int:
        return int(self.global_buffer.capacity_bytes)

    @property
    def dram_bytes_per_s(self) -> float:
        return self.dram.bytes_per_cycle(self.clock_hz) * self.clock_hz

    @property
    def pe_dim(self) -> int:
        """Side of the (square) 2D array; the tile edge for queries and keys."""
        return self.array_2d.cols

    def area_um2(self) -> dict[str, float]:
        a2 = self.array_2d.pes * self.array_2d.pe_area_um2
        a1 = self.array_1d.pes * self.array_1d.pe_area_um2
        buf = self.buffer_bytes * self.buffer_area_um2_per_byte
        return {"array_2d": a2, "array_1d": a1, "global_buffer": buf, "total": a2 + a1 + buf}

    def resized(self, pe_dim: int, buffer_bytes: int | None = None) -> "SpatialAccelerator":
        """The same design with a ``pe_dim x pe_dim`` 2D array, a ``pe_dim`` 1D array and
        optionally another buffer size (for hardware sizing)."""
        data = self.model_dump()
        data["array_2d"]["rows"] = data["array_2d"]["cols"] = pe_dim
        data["array_1d"]["cols"] = pe_dim
        data["name"] = f"{self.name}-pe{pe_dim}"
        if buffer_bytes is not None:
            data["global_buffer"]["capacity_bytes"] = int(buffer_bytes)
        from accelsim.hardware.base import spec_from_dict

        return spec_from_dict(data, source=f"{self.name} resized")  # a bad size is one line, not a traceback
