"""KV-cache capacity for serving admission: how many cached tokens fit beside the weights.

Why: a device can hold a request only while its KV cache fits the memory the weights leave
free; a serving loop that ignores it reports throughput at batches the device cannot hold. The
budget is measured on the model graph the engine runs (``build_model`` at the same ``tp``): the
resident weight bytes, and the KV bytes one more cached token adds (the difference between two
context lengths), so GQA, tensor parallelism and dtype are whatever the graph says.

Admission rule (``workloads.serving_loop``): a request reserves its final KV length
(prompt + output - 1 tokens) when admitted, the way a server without preemption must (vLLM
allocates blocks lazily and preempts instead; preemption is not modelled). A request whose own
final KV exceeds the whole budget can never run and is rejected; one that does not fit beside
the running requests waits in the queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import TensorRole, parts_of
from accelsim.ir.resident import resident_tensors


@dataclass(frozen=True)
class KvBudget:
    capacity_bytes: int
    weight_bytes: float
    kv_bytes_per_token: float

    @property
    def tokens(self) -> int:
        """KV tokens (summed over requests) the memory left after the weights holds."""
        free = self.capacity_bytes - self.weight_bytes
        if free <= 0:
            raise AccelsimError(f"the weights need {self.weight_bytes:.0f} bytes, the device holds "
                                f"{self.capacity_bytes}: {self.weight_bytes - self.capacity_bytes:.0f} bytes missing",
                                field="hardware.capacity_bytes")
        return int(free // self.kv_bytes_per_token)


def device_capacity_bytes(hardware: Any) -> int | None:
    """Memory capacity of a spec (PIM: its banks; GPU: its memory level); None if it has none."""
    hw = load_hardware(hardware) if isinstance(hardware, str) else hardware
    if hasattr(hw, "capacity_bytes"):
        return int(hw.capacity_bytes)
    memory = getattr(hw, "memory", None)
    return getattr(memory, "capacity_bytes", None)


def _resident(graph: Any, role: TensorRole) -> float:
    parts = [(p.name, p.graph, p.repeat) for p in parts_of(graph)]
    return float(sum(t.bytes * n for t, n in resident_tensors(parts, (role,)).values()))


def kv_budget(cfg: Any, hardware: Any, tp: int = 1) -> KvBudget | None:
    """The budget of ``cfg`` on ``hardware``, or None when the spec declares no capacity."""
    from workloads.transformer import build_model

    capacity = device_capacity_bytes(hardware)
    if capacity is None:
        return None
    g1 = build_model(cfg, "decode", batch=1, context=1, tp=tp)
    g2 = build_model(cfg, "decode", batch=1, context=2, tp=tp)
    per_token = _resident(g2, TensorRole.KV_CACHE) - _resident(g1, TensorRole.KV_CACHE)
    return KvBudget(capacity, _resident(g1, TensorRole.WEIGHT), per_token)
