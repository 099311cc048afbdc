"""A GPU-like device for roofline estimates: peak FLOP/s per datatype, memory bandwidth,
interconnect bandwidth, and optional achievable-efficiency factors.

Why efficiencies are separate fields: datasheet peaks are the reproducible, citable numbers;
what fraction a real kernel achieves is a modelling choice the user should see and set.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec, MemoryLevel, register_kind

# Element size -> datatype tried first, then fallbacks, when an Einsum's dtype is given in bytes.
DTYPE_BY_BYTES: dict[int, tuple[str, ...]] = {4: ("fp32",), 2: ("fp16", "bf16"), 1: ("fp8", "int8")}


@register_kind("gpu")
class GPU(HardwareSpec):
    kind: Literal["gpu"] = "gpu"
    peak_flops_per_s: dict[str, float] = Field(description="dense tensor-core peak per datatype (no sparsity)")
    vector_flops_per_s: float = Field(gt=0, description="non-tensor-core rate for norms, softmax, element-wise ops")
    memory: MemoryLevel
    interconnect_bytes_per_s: float | None = Field(default=None, gt=0,
                                                   description="per-GPU one-direction link bandwidth (NVLink/PCIe)")
    compute_efficiency: float = Field(default=1.0, gt=0, le=1)
    memory_efficiency: float = Field(default=1.0, gt=0, le=1)
    interconnect_efficiency: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "GPU":
        if self.memory.bandwidth_bytes_per_s is None:
            raise ValueError("memory.bandwidth_bytes_per_s is required for a gpu")
        for k, v in self.peak_flops_per_s.items():
            if v <= 0:
                raise ValueError(f"peak_flops_per_s.{k} must be positive")
        return self

    @property
    def memory_bytes_per_s(self) -> float:
        return self.memory.bandwidth_bytes_per_s * self.memory_efficiency

    def matrix_flops_per_s(self, dtype: str | int) -> float:
        """Achievable tensor-core FLOP/s for a datatype name or element size in bytes."""
        names = DTYPE_BY_BYTES.get(dtype, ()) if isinstance(dtype, int) else (dtype,)
        for name in names:
            if name in self.peak_flops_per_s:
                return self.peak_flops_per_s[name] * self.compute_efficiency
        raise AccelsimError(f"{self.name} has no peak for datatype {dtype!r}", field="dtype",
                            allowed=sorted(self.peak_flops_per_s))
