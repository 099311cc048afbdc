"""A wafer-scale mesh of cores: Cerebras WSE-style, described by WaferLLM's PLMR model.

Why its own kind: a wafer has no shared memory and no DRAM on the critical path. Every core has
a small local SRAM, a MAC datapath and a router to its four neighbours; what a kernel costs is
decided by how many hops its messages travel (alpha per hop), how many times software on a core
must receive and re-send (beta per relay stage), how many wavelets cross the busiest link, and
whether the routing plan fits the router's limited colours (routing paths). WaferLLM calls this
PLMR (massive Parallelism, non-uniform Latency, constrained Memory, limited Routing;
He et al., OSDI'25, §3). The timing parameters alpha and beta are not published by WaferLLM;
presets take them from the validated HPDC'24 wafer-scale reduce model (see each preset's
``sources:``), which predicts CS-2 collectives within 4%.

Geometry: ``fabric_width x fabric_height`` cores exist; the vendor's host-facing halo
(memcpy infrastructure) reserves ``halo_west/east`` columns and ``halo_north/south`` rows, so a
kernel can use at most ``usable_width x usable_height``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import ClockHz, PerCycle
from accelsim.hardware.base import HardwareSpec, register_kind


@register_kind("mesh")
class MeshDevice(HardwareSpec):
    kind: Literal["mesh"] = "mesh"
    fabric_width: int = Field(gt=0, description="cores along x (columns) the fabric has")
    fabric_height: int = Field(gt=0, description="cores along y (rows)")
    halo_west: int = Field(default=0, ge=0, description="columns reserved by the vendor on the west side")
    halo_east: int = Field(default=0, ge=0)
    halo_north: int = Field(default=0, ge=0, description="rows reserved on the north side")
    halo_south: int = Field(default=0, ge=0)
    clock_hz: ClockHz = Field(description="bounds: accelsim.fieldchecks")
    sram_bytes_per_core: int = Field(gt=0)
    macs_per_cycle: PerCycle = Field(description="16-bit multiply-accumulates per core per cycle")
    wavelet_bytes: int = Field(gt=0, description="payload of one fabric word (wavelet)")
    link_wavelets_per_cycle: PerCycle = Field(default=1.0, description="per direction, per neighbour link")
    ramp_wavelets_per_cycle: PerCycle = Field(
        default=1.0, description="per direction, between a core and its own router; every stream a core sends "
                                 "(receives) shares its off- (on-) ramp")
    routing_colours: int = Field(gt=0, description="routing paths (colours) a router can hold at once")
    alpha_cycles: float = Field(gt=0, description="latency of one hop, router to neighbouring router")
    beta_cycles: float = Field(gt=0, description="software cost of one relay stage: receive, combine, re-send")
    element_bytes: int = Field(default=2, gt=0, description="bytes of one matrix element (FP16 on WSE-2)")

    @model_validator(mode="after")
    def _check(self) -> MeshDevice:
        if self.usable_width <= 0 or self.usable_height <= 0:
            raise AccelsimError(f"the halo leaves no usable cores ({self.usable_width} x {self.usable_height})",
                                field="halo_west")
        if self.wavelet_bytes % self.element_bytes:
            raise AccelsimError(f"a {self.wavelet_bytes}-byte wavelet cannot carry whole "
                                f"{self.element_bytes}-byte elements", field="wavelet_bytes")
        return self

    @property
    def usable_width(self) -> int:
        return self.fabric_width - self.halo_west - self.halo_east

    @property
    def usable_height(self) -> int:
        return self.fabric_height - self.halo_north - self.halo_south

    @property
    def cores(self) -> int:
        return self.fabric_width * self.fabric_height

    @property
    def elements_per_wavelet(self) -> int:
        return self.wavelet_bytes // self.element_bytes

    def wavelets(self, elements: int) -> int:
        """Wavelets needed to carry ``elements`` matrix elements (a partly filled last wavelet counts)."""
        return -(-int(elements) // self.elements_per_wavelet)

    def check_grid(self, width: int, height: int) -> None:
        """Raise unless a ``width x height`` kernel fits inside the usable fabric."""
        for name, value, limit in (("grid width", width, self.usable_width),
                                   ("grid height", height, self.usable_height)):
            if not isinstance(value, int) or value < 1 or value > limit:
                raise AccelsimError(f"{name} {value} does not fit {self.name}'s usable "
                                    f"{self.usable_width} x {self.usable_height} cores (the rest is the "
                                    f"vendor's halo)", field="grid", allowed=f"1..{limit}")
