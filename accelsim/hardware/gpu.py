"""A GPU-like device for roofline estimates: peak FLOP/s per datatype, memory bandwidth,
interconnect bandwidth, and optional achievable-efficiency factors.

Why efficiencies are separate fields: datasheet peaks are the reproducible, citable numbers;
what fraction a real kernel achieves is a modelling choice the user should see and set.

Units. Rates are decimal, as datasheets state them (TFLOP/s = 1e12 FLOP/s, TB/s = 1e12 B/s).
Memory *capacity* is binary: a datasheet's "80 GB" of HBM is 80 GiB (80 x 2^30 bytes), which is
what the devices expose (nvidia-smi reports 81920 MiB on an A100 80GB and 143771 MiB = 140.4 GiB
on an H200 "141 GB"; a decimal 141e9 B would be only 134,468 MiB). Every preset's
``memory.capacity_bytes`` is therefore ``N * 2**30`` and the CLI prints capacities in GiB.

Datatypes. An Einsum carries only its element size, so ``matrix_dtype`` picks the datatype for a
size: 4 -> fp32, 2 -> fp16 then bf16 (equal peaks on every preset), 1 -> fp8, else int8. Falling
back from fp8 to int8 is a substitution (an fp8 model on an A100 runs at its int8 peak only if
quantised to int8), so the roofline records every substitution in its report.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import BytesPerS, Efficiency, FlopsPerS
from accelsim.hardware.base import HardwareSpec, MemoryLevel, register_kind

# Element size -> datatype tried first, then fallbacks, when an Einsum's dtype is given in bytes.
DTYPE_BY_BYTES: dict[int, tuple[str, ...]] = {4: ("fp32",), 2: ("fp16", "bf16"), 1: ("fp8", "int8")}


@register_kind("gpu")
class GPU(HardwareSpec):
    kind: Literal["gpu"] = "gpu"
    # rates and bandwidths are bounded to physically meaningful ranges (accelsim.fieldchecks)
    peak_flops_per_s: dict[str, FlopsPerS] = Field(description="dense tensor-core peak per datatype (no sparsity)")
    vector_flops_per_s: FlopsPerS = Field(description="non-tensor-core rate for norms, softmax, element-wise ops")
    memory: MemoryLevel
    interconnect_bytes_per_s: BytesPerS | None = Field(default=None,
                                                       description="per-GPU one-direction link bandwidth (NVLink/PCIe)")
    compute_efficiency: Efficiency = 1.0
    memory_efficiency: Efficiency = 1.0
    interconnect_efficiency: Efficiency = 1.0

    @model_validator(mode="after")
    def _check(self) -> "GPU":
        if self.memory.bandwidth_bytes_per_s is None:
            raise ValueError("memory.bandwidth_bytes_per_s is required for a gpu")
        for k, v in self.peak_flops_per_s.items():
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"peak_flops_per_s.{k} must be a positive finite number, got {v!r}")
        return self

    @property
    def memory_bytes_per_s(self) -> float:
        return self.memory.bandwidth_bytes_per_s * self.memory_efficiency

    def matrix_dtype(self, dtype: str | int) -> str:
        """The datatype whose peak applies to a datatype name or element size in bytes."""
        names = DTYPE_BY_BYTES.get(dtype, ()) if isinstance(dtype, int) else (dtype,)
        for name in names:
            if name in self.peak_flops_per_s:
                return name
        raise AccelsimError(f"{self.name} has no peak for datatype {dtype!r}", field="dtype",
                            allowed=sorted(self.peak_flops_per_s))

    def matrix_flops_per_s(self, dtype: str | int) -> float:
        """Achievable tensor-core FLOP/s for a datatype name or element size in bytes."""
        return self.peak_flops_per_s[self.matrix_dtype(dtype)] * self.compute_efficiency
