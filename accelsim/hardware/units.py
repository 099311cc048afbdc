"""Units every whole-model accelerator has besides its matrix array: a vector unit and chip links.

Why shared specs: a systolic chip (TPU-like) and a spatial chip (FuseMax-like) both run norms,
softmax, activations and residual adds somewhere, and both talk to their tensor-parallel peers
over links; describing those the same way lets one engine cost them for every kind.
"""
from __future__ import annotations

from pydantic import Field

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import BytesPerS
from accelsim.hardware.base import Spec

# Op kinds a vector unit may list (accelsim.ir.OpKind values that are not data movement).
VECTOR_OPS: tuple[str, ...] = ("add", "sub", "mul", "max", "exp", "div", "activation", "norm", "mac")


class VectorUnit(Spec):
    """``lanes`` elements per cycle, each op kind taking ``cycles_per_element[op]`` cycles per
    element on one lane (a pipelined unit: throughput, not latency)."""

    lanes: int = Field(gt=0, description="elements processed per cycle at 1 cycle per element")
    cycles_per_element: dict[str, float] = Field(description="op kind -> cycles per element per lane")
    energy_pj_per_element: dict[str, float] = Field(default_factory=dict,
                                                    description="op kind -> pJ per element (optional)")

    def model_post_init(self, _context: object) -> None:
        for table, name in ((self.cycles_per_element, "cycles_per_element"),
                            (self.energy_pj_per_element, "energy_pj_per_element")):
            unknown = sorted(set(table) - set(VECTOR_OPS))
            if unknown:
                raise AccelsimError(f"unknown op kinds {unknown}", field=f"vector.{name}", allowed=VECTOR_OPS)
        bad = {k: v for k, v in self.cycles_per_element.items() if not v > 0}
        if bad:
            raise AccelsimError(f"cycles must be positive, got {bad}", field="vector.cycles_per_element")
        bad = {k: v for k, v in self.energy_pj_per_element.items() if v < 0}
        if bad:
            raise AccelsimError(f"energies must be >= 0, got {bad}", field="vector.energy_pj_per_element")

    def can_run(self, op: str) -> bool:
        return op in self.cycles_per_element


class ChipLinks(Spec):
    """The chip's links to its tensor-parallel peers (a ring all-reduce uses them)."""

    bandwidth_bytes_per_s: BytesPerS = Field(description="bytes per second one chip sends in a collective")
    latency_s: float = Field(default=0.0, ge=0, description="per-step latency of a collective")
