"""Lay GEMV weights and KV caches over PIM channels, banks and rows (PIM-GPT style).

PIM-GPT's mapping (npj Unconv. Comput. 2024 / arXiv 2310.09385): output neurons are dealt to the
banks so every bank works; one neuron's reduction vector is stored contiguously, neurons (and
attention heads) are concatenated to fill rows, large matrices are tiled by row; the key cache is
stored row-major (a token's key vector contiguous) and the value cache column-major (a feature's
values over tokens contiguous), so both attention GEMVs stream whole rows. With an open-row
policy a row is activated once and all its columns are read, so the row-hit rate is
1 - activations / column reads.

Why with the engine: ``simulate(model, "pim-gpt")`` without a mapping lays the weights out
itself (its default placement), and the simulator never imports a mapper; ``mappers.pim`` is the
mapper's face of the same layouts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.errors import AccelsimError


@dataclass(frozen=True)
class GemvLayout:
    """Where one GEMV's matrix sits and what streaming it costs per channel."""

    k: int  # reduction length
    n: int  # output neurons
    units: int  # banks (MAC units) sharing the work
    neurons_per_unit_max: int
    neurons_per_unit_mean: float
    rows_per_unit: int  # DRAM rows the busiest unit streams
    columns_per_unit: int  # column reads the busiest unit makes (one vector)
    row_bytes: int
    unit_bytes: int  # bytes the busiest unit holds

    @property
    def load_balance(self) -> float:
        """Busiest unit over the mean (1.0 = perfectly balanced)."""
        return self.neurons_per_unit_max / self.neurons_per_unit_mean

    @property
    def row_utilization(self) -> float:
        return self.unit_bytes / (self.rows_per_unit * self.row_bytes) if self.rows_per_unit else 1.0

    def row_hit_rate(self, vectors: int = 1) -> float:
        """Column reads that find their row open (each open row serves ``vectors`` input vectors)."""
        reads = self.columns_per_unit * vectors
        return 1.0 - self.rows_per_unit / reads if reads else 1.0


def map_gemv(k: int, n: int, dtype_bytes: int, units: int, row_bytes: int, access_bytes: int) -> GemvLayout:
    """PIM-GPT mapping of a k x n weight over ``units`` banks: neurons dealt round-robin, each
    neuron's k weights contiguous, neurons concatenated to fill rows."""
    for name, v in (("k", k), ("n", n), ("dtype_bytes", dtype_bytes), ("units", units)):
        if v < 1:
            raise AccelsimError(f"must be >= 1, got {v}", field=name)
    if row_bytes % dtype_bytes or access_bytes % dtype_bytes:
        raise AccelsimError(f"{dtype_bytes}-byte elements do not divide the {access_bytes}-byte column / "
                            f"{row_bytes}-byte row", field="dtype_bytes")
    per_max = math.ceil(n / units)
    unit_bytes = per_max * k * dtype_bytes
    rows = math.ceil(unit_bytes / row_bytes)
    cols = math.ceil(unit_bytes / access_bytes)
    return GemvLayout(k, n, units, per_max, n / units, rows, cols, row_bytes, unit_bytes)


def map_gemv_naive(k: int, n: int, dtype_bytes: int, units: int, row_bytes: int, access_bytes: int) -> GemvLayout:
    """The layout PIM-GPT improves on: one neuron per row, rows never shared (a neuron shorter
    than a row leaves the rest of the row empty and costs an activation of its own)."""
    per_max = math.ceil(n / units)
    rows_per_neuron = math.ceil(k * dtype_bytes / row_bytes)
    cols = per_max * math.ceil(k * dtype_bytes / access_bytes)
    return GemvLayout(k, n, units, per_max, n / units, per_max * rows_per_neuron, cols, row_bytes,
                      per_max * k * dtype_bytes)


def map_kv(heads: int, head_dim: int, context: int, dtype_bytes: int, units: int, row_bytes: int,
           access_bytes: int) -> tuple[GemvLayout, GemvLayout]:
    """Key cache row-major (score GEMV: n = heads x context keys of head_dim) and value cache
    column-major (context GEMV: n = heads x head_dim features of context values)."""
    if context < 1:
        raise AccelsimError(f"must be >= 1, got {context}", field="context")
    keys = map_gemv(head_dim, heads * context, dtype_bytes, units, row_bytes, access_bytes)
    values = map_gemv(context, heads * head_dim, dtype_bytes, units, row_bytes, access_bytes)
    return keys, values
