"""FlashAttention vs standard attention on a GPU-like device: HBM traffic and roofline time.

Why: FlashAttention (Dao et al., NeurIPS 2022) is the GPU answer to the same problem FuseMax
solves on a spatial array: never write the N x N score matrix to memory. Its benefit is an IO
count, so this module counts HBM element accesses exactly as the paper's algorithms do, for a
given on-chip SRAM size, and turns bytes and FLOPs into time on the roofline devices
(``accelsim.hardware.gpu`` presets).

Counts per (batch, head), sequence N, head dimension d, SRAM of M elements (PAPERS.md):

- Standard attention (the paper's Algorithms 0 and 3): forward reads Q, K, writes S, reads S,
  writes P, reads P and V, writes O: ``4Nd + 4N^2``; backward reads P, dO, writes dV; reads dO,
  V, writes dP; reads P, dP, writes dS; reads dS, K, writes dQ; reads dS, Q, writes dK:
  ``8Nd + 7N^2``.
- FlashAttention (Algorithms 1/2 and 4), blocks ``B_c = ceil(M / 4d)``, ``B_r = min(ceil(M / 4d), d)``,
  ``T_c = ceil(N / B_c)`` K/V blocks in the outer loop: forward reads K and V once and, per K/V
  block, reads Q, reads and writes O and the statistics l, m: ``2Nd + T_c (3Nd + 4N)``;
  backward reads K, V, writes dK, dV once and, per K/V block, reads Q, O, dO, reads and writes
  dQ, reads l and m: ``4Nd + T_c (5Nd + 2N)``.

FLOPs: a matmul of the N x N scores costs ``2 N^2 d``; the standard forward has two (QK^T, PV),
its backward four (dV, dP, dQ, dK); FlashAttention's backward also recomputes QK^T (five).
Element-wise softmax work is ignored (it is memory-bound and counted as traffic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.errors import AccelsimError, require_positive
from accelsim.hardware import load_hardware


@dataclass(frozen=True)
class AttentionIO:
    """HBM element accesses and FLOPs of one attention layer (all batches and heads)."""

    method: str
    hbm_elements: int
    hbm_bytes: int
    flops: int
    block_c: int | None = None
    block_r: int | None = None


def flash_blocks(n: int, d: int, sram_elements: int) -> tuple[int, int]:
    """(B_c, B_r) of FlashAttention for an SRAM of ``sram_elements`` elements."""
    if sram_elements < 4 * d:
        raise AccelsimError(f"SRAM of {sram_elements} elements is below 4d = {4 * d}; FlashAttention needs "
                            "at least one row each of Q, K, V and O on chip", field="sram_bytes")
    bc = math.ceil(sram_elements / (4 * d))
    return min(bc, n), min(bc, d)


def standard_io(n: int, d: int, heads: int, batch: int = 1, *, backward: bool = True,
                dtype_bytes: int = 2) -> AttentionIO:
    for name, v in (("seq", n), ("head_dim", d), ("heads", heads), ("batch", batch)):
        require_positive(v, name)
    per_head = 4 * n * d + 4 * n * n + ((8 * n * d + 7 * n * n) if backward else 0)
    flops = (2 + (4 if backward else 0)) * 2 * n * n * d
    bh = batch * heads
    return AttentionIO("standard", per_head * bh, per_head * bh * dtype_bytes, flops * bh)


def flash_io(n: int, d: int, heads: int, batch: int = 1, *, sram_bytes: int, backward: bool = True,
             dtype_bytes: int = 2) -> AttentionIO:
    for name, v in (("seq", n), ("head_dim", d), ("heads", heads), ("batch", batch), ("sram_bytes", sram_bytes)):
        require_positive(v, name)
    m = sram_bytes // dtype_bytes
    bc, br = flash_blocks(n, d, m)
    tc = math.ceil(n / bc)
    per_head = 2 * n * d + tc * (3 * n * d + 4 * n)
    if backward:
        per_head += 4 * n * d + tc * (5 * n * d + 2 * n)
    flops = (2 + (5 if backward else 0)) * 2 * n * n * d
    bh = batch * heads
    return AttentionIO("flash", per_head * bh, per_head * bh * dtype_bytes, flops * bh, bc, br)


def roofline_time_s(io: AttentionIO, device: str = "a100-80gb", dtype: str = "fp16") -> dict[str, float]:
    """max(compute, memory) on a ``gpu`` preset (peak tensor-core rate for ``dtype``)."""
    gpu = load_hardware(device, kind="gpu")
    compute = io.flops / gpu.matrix_flops_per_s(dtype)
    memory = io.hbm_bytes / gpu.memory_bytes_per_s
    return {"compute_s": compute, "memory_s": memory, "time_s": max(compute, memory),
            "bound": "compute" if compute >= memory else "memory"}


def compare(n: int, d: int, heads: int, batch: int, sram_bytes: int, device: str = "a100-80gb",
            backward: bool = True) -> dict[str, dict]:
    """Standard vs FlashAttention: traffic, FLOPs and roofline time."""
    out = {}
    for io in (standard_io(n, d, heads, batch, backward=backward),
               flash_io(n, d, heads, batch, sram_bytes=sram_bytes, backward=backward)):
        out[io.method] = {"hbm_bytes": io.hbm_bytes, "flops": io.flops, "block_c": io.block_c,
                          "block_r": io.block_r, **roofline_time_s(io, device)}
    return out
