"""The one builder a transformer block's Einsums are written with, shared by dense and MoE layers.

Why its own module: ``workloads.moe`` builds the MoE FFN into a block that
``workloads.transformer`` assembles, and the shared expert is a dense FFN; with the builder
and the dense FFN here, both import this module instead of each other.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Operand, OpKind, Tensor, TensorRole
from workloads.config import ModelConfig

W, A, I = TensorRole.WEIGHT, TensorRole.ACTIVATION, TensorRole.INPUT


@dataclass
class Dims:
    """Per-device sizes for one phase."""

    b: int
    s: int  # positions computed now
    m: int  # key positions attended
    d: int
    heads: int  # query heads on this device
    g: int  # KV heads on this device
    r: int  # query heads per KV head
    e: int  # head dim
    ffn: int
    vocab: int
    tp: int


def shard(total: int, tp: int, name: str) -> int:
    if total % tp:
        raise AccelsimError(f"{name} ({total}) is not divisible by the tensor-parallel degree {tp}", field="tp")
    return total // tp


class BlockBuilder:
    """Accumulates the Einsums of one graph; small helpers keep each operator one line."""

    def __init__(self, cfg: ModelConfig, prefix: str) -> None:
        self.cfg = cfg
        self.p = prefix
        self.ops: list[Einsum] = []
        self.db = cfg.dtype_bytes

    # tensors ------------------------------------------------------------------------------
    def t(self, name: str, dims: str, shape: tuple[int, ...], role: TensorRole = A, dtype: int | None = None,
          shared: bool = False) -> Tensor:
        full = name if shared else self.p + name
        return Tensor(full, tuple(dims), shape, dtype or self.db, role)

    def add(self, name: str, out: Tensor, out_idx: str, ins: list[tuple[Tensor, str]], extents: dict[str, int],
            op: OpKind, **attrs: object) -> Tensor:
        self.ops.append(Einsum(self.p + name, Operand(out, tuple(out_idx)),
                               tuple(Operand(t, tuple(i)) for t, i in ins), extents, op, attrs))
        return out

    # operators ----------------------------------------------------------------------------
    def linear(self, name: str, x: Tensor, x_idx: str, w_name: str, w_dims: str, out_dims: str,
               sizes: dict[str, int], bias: bool = False, kind: str = "gemm") -> Tensor:
        """``out[out_dims] = x[x_idx] * W[w_dims]`` (+ bias over the non-token output dims)."""
        w = self.t(w_name, w_dims, tuple(sizes[c] for c in w_dims), W)
        y = self.t(name, out_dims, tuple(sizes[c] for c in out_dims))
        ext = {c: sizes[c] for c in dict.fromkeys(x_idx + w_dims + out_dims)}
        self.add(name, y, out_dims, [(x, x_idx), (w, w_dims)], ext, OpKind.MAC, kind=kind)
        if bias:
            bias_dims = "".join(c for c in out_dims if c in w_dims)
            bt = self.t(w_name + "_bias", bias_dims, tuple(sizes[c] for c in bias_dims), W)
            yb = self.t(name + "_b", out_dims, y.shape)
            self.add(name + "_bias", yb, out_dims, [(y, out_dims), (bt, bias_dims)],
                     {c: sizes[c] for c in out_dims}, OpKind.ADD, kind="bias")
            return yb
        return y

    def norm(self, name: str, x: Tensor, dims: str, sizes: dict[str, int], *, weight_shared: bool = False) -> Tensor:
        """Layer/RMS norm over the last dim: a vector pass with scale (and shift for LayerNorm)."""
        last = dims[-1]
        ins = [(x, dims), (self.t(name + ".gamma", last, (sizes[last],), W, shared=weight_shared), last)]
        if self.cfg.norm == "layernorm":
            ins.append((self.t(name + ".beta", last, (sizes[last],), W, shared=weight_shared), last))
        y = self.t(name, dims, x.shape)
        return self.add(name, y, dims, ins, {c: sizes[c] for c in dims}, OpKind.NORM, kind=self.cfg.norm)

    def pointwise(self, name: str, op: OpKind, a: Tensor, b: Tensor | None, dims: str, sizes: dict[str, int],
                  b_dims: str | None = None, **attrs: object) -> Tensor:
        y = self.t(name, dims, a.shape)
        ins = [(a, dims)] + ([(b, b_dims or dims)] if b is not None else [])
        return self.add(name, y, dims, ins, {c: sizes[c] for c in dims}, op, **attrs)

    def rope(self, name: str, x: Tensor, dims: str, sizes: dict[str, int], rot_dim: str) -> Tensor:
        """Rotary embedding: ``x*cos + rotate(x)*sin``, as a multiply against a [s, 2, e] cos/sin table.

        Costed as 2 FLOPs per element (the two products); the add is folded in.
        """
        table = self.t("rope_table", "sce", (sizes["s"], 2, sizes[rot_dim]), I, shared=True)
        y = self.t(name, dims, x.shape)
        ext = {c: sizes[c] for c in dims} | {"c": 2}
        return self.add(name, y, dims, [(x, dims), (table, "sc" + rot_dim)], ext, OpKind.MUL, kind="rope")

    def allreduce(self, name: str, x: Tensor, dims: str, sizes: dict[str, int], tp: int) -> Tensor:
        if tp == 1:
            return x
        y = self.t(name, dims, x.shape)
        ring = 2 * (tp - 1) / tp * x.bytes  # ring all-reduce: each device sends (and receives) this much
        return self.add(name, y, dims, [(x, dims)], {c: sizes[c] for c in dims}, OpKind.ALLREDUCE,
                        kind="allreduce", participants=tp, collective_bytes=ring)



def dense_ffn(bb: BlockBuilder, x: Tensor, D: Dims, ffn: int, name: str = "ffn", allreduce: bool = True) -> Tensor:
    """The FFN of one layer: up (and gate), activation, down, and the row-parallel all-reduce."""
    cfg = bb.cfg
    sz = dict(b=D.b, s=D.s, d=D.d, f=ffn)
    n = name + "."
    up = bb.linear(n + "up", x, "bsd", n + "w_up", "df", "bsf", sz, bias=cfg.proj_bias)
    if cfg.ffn_gated:
        gate = bb.linear(n + "gate", x, "bsd", n + "w_gate", "df", "bsf", sz, bias=cfg.proj_bias)
        act = bb.pointwise(n + "act", OpKind.ACTIVATION, gate, None, "bsf", sz, kind=cfg.activation)
        h = bb.pointwise(n + "gated", OpKind.MUL, act, up, "bsf", sz)
    else:
        h = bb.pointwise(n + "act", OpKind.ACTIVATION, up, None, "bsf", sz, kind=cfg.activation)
    y = bb.linear(n + "down", h, "bsf", n + "w_down", "fd", "bsd", sz, bias=cfg.proj_bias)
    return bb.allreduce(n + "allreduce", y, "bsd", sz, D.tp) if allreduce else y
