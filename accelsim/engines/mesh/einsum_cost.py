"""What one Einsum of an LLM costs on a g x g core grid, with WaferLLM's partitioning.

Why two modes (He et al., OSDI'25, §6): in *GEMM mode* (prefill: many token rows) activations
and weights are both cut in 2D and multiplied with MeshGEMM; in *GEMV mode* (decode: a few
rows) the weights (or the KV cache) are cut in 2D, the activation vector is replicated along x
and cut along y, each core does a local GEMV and a K-tree allreduce along y sums the partials
(MeshGEMV). Attention scores (Q @ K^T) use WaferLLM's transposed schedule
(``gemm_transposed``), since K is laid out like Q. A reduction extent smaller than g uses ``min(g, K)`` cores per reduction group and
spreads the outputs over the rest. Element-wise work is spread over the cores that hold the
tensor (all g^2 in GEMM mode; g in GEMV mode, the vector being replicated along the other
axis); norms and softmax add an allreduce of their per-row statistics.

Assumed per-core rates where no source gives one (stated in the report): one element-wise op
per cycle per core; a KV-cache write moves its slice one hop (WaferLLM's shift-based cache).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.engines.mesh.gemm import gemm_timing
from accelsim.engines.mesh.gemm_transposed import transposed_gemm_timing
from accelsim.engines.mesh.gemv import allreduce_timing
from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, OpKind, TensorRole


@dataclass(frozen=True)
class EinsumCost:
    name: str
    op: str
    mode: str  # "gemm", "gemv", "vector"
    compute_cycles: float
    comm_cycles: float
    routing_cycles: float  # relay-stage (beta) share of comm
    work_bytes_per_core: int  # transient buffers while it runs
    macs: float
    flops: float

    @property
    def total_cycles(self) -> float:
        return self.compute_cycles + self.comm_cycles


def _fraction(e: Einsum) -> float:
    return float(e.attrs.get("flop_fraction", 1.0))


def gemm_view(e: Einsum) -> tuple[int, int, int, int]:
    """(batch, m, k, n) of a MAC Einsum; for >2 inputs (MoE experts) n = output ranks shared with
    the weight, m = the other output elements, k = the MACs per output element actually done."""
    try:
        g = e.as_gemm()
        return g.batch, g.m, g.k, g.n
    except AccelsimError:  # not a two-input GEMM (MoE experts read a routing map too)
        pass
    weight = next((o for o in e.inputs if o.tensor.role is TensorRole.WEIGHT), e.inputs[-1])
    out = e.output.ranks
    n = math.prod(e.extents[r] for r in e.extents if r in out and r in weight.ranks)
    m = max(1, e.output.tensor.elements // max(1, n))
    k = max(1, round(e.points * _fraction(e) / (m * n)))
    return 1, m, k, n


class GridCoster:
    """Costs of Einsums on one ``g x g`` grid of ``device`` (allreduces cached per shape)."""

    def __init__(self, device, g: int) -> None:
        self.device, self.g = device, g
        self._allreduces: dict[tuple[int, int], object] = {}

    def allreduce(self, cores: int, elements: int):
        key = (cores, max(1, elements))
        if key not in self._allreduces:
            self._allreduces[key] = allreduce_timing("ktree", cores, key[1], self.device)
        return self._allreduces[key]

    def cost(self, e: Einsum, tokens: int) -> EinsumCost:
        if e.op is OpKind.MAC:
            return self._mac(e)
        return self._vector(e, tokens)

    def _mac(self, e: Einsum) -> EinsumCost:
        d, g = self.device, self.g
        batch, m, k, n = gemm_view(e)
        macs = e.points * _fraction(e)
        f = _fraction(e)
        scores = e.attrs.get("kind") == "attention_qk"  # Q @ K^T: K is laid out like Q, not transposed
        if m >= g and batch == 1:
            t = self._gemm(scores, m, max(k, g), max(n, g), g, f)
            return self._gemm_cost(e, t, 1, f, macs)
        if m >= g:  # batched GEMMs (attention heads): MeshGEMMs on sub-grids no wider than the matrices
            q = min(g // max(1, math.ceil(math.sqrt(batch))), k, n, m)
            if q >= 2:
                subgrids = (g // q) ** 2
                splits = max(1, subgrids // batch)  # a head's rows over several sub-grids when they outnumber heads
                rounds = math.ceil(batch * splits / subgrids)
                t = self._gemm(scores, max(q, math.ceil(m / splits)), k, n, q, f)
                return self._gemm_cost(e, t, rounds, f, macs)
        # GEMV mode: K cut over ky cores of each column, outputs over the remaining cores
        ky = min(g, k)
        groups = max(1, g // ky)
        outputs = batch * m * n
        per_core_out = math.ceil(outputs / (g * groups))
        compute = math.ceil(macs / (g * ky * groups)) / d.macs_per_cycle  # cores in use: g columns of ky x groups
        ar = self.allreduce(ky, per_core_out)
        work = (per_core_out * 2 + math.ceil(k / ky) * math.ceil(batch * m / groups)) * d.element_bytes
        return EinsumCost(e.name, e.op.value, "gemv", compute, ar.cycles, ar.routing_cycles, work, macs, 2 * macs)

    def _gemm(self, scores: bool, m: int, k: int, n: int, grid: int, f: float):
        if scores:  # WaferLLM's prefill QK^T: K rotates, partials reduced along the row every step
            return transposed_gemm_timing(m, k, n, grid, self.device, work_fraction=f)
        return gemm_timing("meshgemm", m, k, n, grid, self.device)

    @staticmethod
    def _gemm_cost(e: Einsum, t, rounds: int, f: float, macs: float) -> EinsumCost:
        """Compute is the multiply (scaled by the causal fraction unless the timing already was);
        communication is what the overlapped schedule leaves exposed (total minus multiply)."""
        compute = t.compute_cycles * (1.0 if t.algorithm == "meshgemm_t" else f)
        exposed = max(0.0, t.total_cycles - t.compute_cycles)
        routing = t.routing_cycles * (exposed / t.comm_cycles if t.comm_cycles else 0.0)
        return EinsumCost(e.name, e.op.value, "gemm", rounds * compute, rounds * exposed, rounds * routing,
                          t.sram_bytes_per_core, macs, 2 * macs)

    def _vector(self, e: Einsum, tokens: int) -> EinsumCost:
        d, g = self.device, self.g
        spread = g * g if tokens >= g else g  # decode vectors are replicated along one axis
        points = e.points * _fraction(e)
        if e.op is OpKind.COPY:
            touched = e.attrs.get("touched", {})
            moved = sum(o.tensor.elements * float(touched.get(o.tensor.name, 1.0)) for o in e.inputs
                        if o.tensor.role is not TensorRole.INPUT)
            moved = max(moved, e.output.tensor.elements)
            compute = math.ceil(moved / spread)
            # the slice moves one hop (gather/dispatch, shift-based KV cache): one relay stage
            comm = d.beta_cycles + d.alpha_cycles + d.wavelets(compute)
            return EinsumCost(e.name, e.op.value, "vector", compute, comm, d.beta_cycles,
                              compute * d.element_bytes, 0.0, 0.0)
        compute = math.ceil(points / spread)
        comm = routing = 0.0
        # cross-core reductions: norms and softmax over a row, max (top-k) over experts; a rank
        # reduced inside one element's neighbourhood (RoPE's pair) stays on the core
        reduced: set[str] = set()
        if e.op is OpKind.NORM or e.attrs.get("kind") == "softmax":
            reduced = _row_ranks(e)
        elif e.op is OpKind.MAX:
            reduced = set(e.reduction_ranks())
        if reduced:
            rows = max(1, math.prod(v for r, v in e.extents.items() if r not in reduced))
            rounds = 2 if e.attrs.get("kind") == "softmax" else 1  # max, then sum
            ar = self.allreduce(g, math.ceil(rows / (g if tokens >= g else 1)))
            comm, routing = rounds * ar.cycles, rounds * ar.routing_cycles
        flops = e.flops * _fraction(e)
        return EinsumCost(e.name, e.op.value, "vector", compute, comm, routing, 0, 0.0, float(flops))


def _row_ranks(e: Einsum) -> set[str]:
    """The rank a norm or softmax reduces over: the last dimension of its first input."""
    first = e.inputs[0]
    return set(first.affine[-1].ranks)
