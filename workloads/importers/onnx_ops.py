"""ONNX pooling, normalisation and concatenation as Einsums (the CNN operators besides Conv).

Why apart from ``onnx_graph``: each of these needs its own index algebra (pooling windows, a
padding value, a divisor, per-channel parameters), and keeping them here keeps the translator
small. Semantics follow the ONNX operator specification (opset 17+), and the tests check each
against ``onnx.reference`` with ``workloads.executor`` evaluating the Einsums:

- MaxPool: ``y[n,c,p] = max_r x[n,c, s*p + d*r - pad]``, out-of-range reads are ``-inf``
  (``attrs["pad"]``), so padding never wins the max (ceil_mode windows past the edge likewise).
- AveragePool: the window sum (padding reads 0), then a division by the window size, or with
  ``count_include_pad = 0`` and pads by the count of in-range positions per output (a constant
  tensor ``<node>.divisor``); ceil_mode 1 is refused (its divisor rule is not modelled).
- GlobalAveragePool: the sum over every spatial position, divided by their number.
- BatchNormalization (inference): ``(x - mean) / sqrt(var + eps) * scale + B`` as one norm
  Einsum over ``x`` with the four per-channel tensors (training mode is refused).
- LayerNormalization: a norm Einsum over ``x`` normalising the ranks from ``axis`` on, with
  scale (and bias) over those ranks; ``attrs["normalized_ranks"]`` names them.
- Concat: one Einsum reading every input at its offset along the axis (reads outside an input
  are 0, so the sum is the concatenation); it moves data and computes nothing
  (``flop_fraction = 0``). The first input carries a dummy extent-1 rank ``z`` in its index
  (``i+z``) so its index may span the whole output axis, as the later inputs' offset indices do.
"""
from __future__ import annotations

import math

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Operand, OpKind, Tensor, TensorRole

POOLING = {"MaxPool", "AveragePool", "GlobalAveragePool"}
NORMS = {"BatchNormalization", "LayerNormalization"}
OPS = sorted({*POOLING, *NORMS, "Concat"})


def _window(x: Tensor, out: Tensor, attrs: dict, where: str) -> tuple[dict, tuple[str, ...], list[int], list[int]]:
    """Extents and the input index of a pooling window; also the kernel and pads."""
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise AccelsimError("auto_pad is not supported; give explicit pads", field=where)
    nsp = len(x.shape) - 2
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * nsp))
    dil = list(attrs.get("dilations", [1] * nsp))
    pads = list(attrs.get("pads", [0] * 2 * nsp))
    p = [f"p{j}" for j in range(nsp)]
    r = [f"r{j}" for j in range(nsp)]
    ext = {"n": out.shape[0], "c": out.shape[1], **dict(zip(p, out.shape[2:])), **dict(zip(r, kernel))}

    def term(coef: int, rank: str) -> str:
        return rank if coef == 1 else f"{coef}*{rank}"

    x_idx = ("n", "c", *(f"{term(strides[j], p[j])}+{term(dil[j], r[j])}" + (f"-{pads[j]}" if pads[j] else "")
                         for j in range(nsp)))
    return ext, x_idx, kernel, pads


def pooling(op: str, name: str, x: Tensor, out: Tensor, attrs: dict, where: str) -> list[Einsum]:
    nsp = len(x.shape) - 2
    out_idx = ("n", "c", *(f"p{j}" for j in range(nsp)))
    if op == "GlobalAveragePool":
        ext = {"n": x.shape[0], "c": x.shape[1], **{f"p{j}": 1 for j in range(nsp)},
               **{f"r{j}": s for j, s in enumerate(x.shape[2:])}}
        x_idx = ("n", "c", *(f"r{j}" for j in range(nsp)))
        return _sum_then_divide(name, op, x, x_idx, out, out_idx, ext, math.prod(x.shape[2:]), None)
    ext, x_idx, kernel, pads = _window(x, out, attrs, where)
    if op == "MaxPool":
        return [Einsum(name, Operand(out, out_idx), (Operand(x, x_idx),), ext, OpKind.MAX,
                       {"kind": "maxpool", "onnx_op": op, "pad": {x.name: float("-inf")}})]
    if attrs.get("ceil_mode", 0):
        raise AccelsimError("AveragePool with ceil_mode 1 is not supported", field=where, allowed="ceil_mode 0")
    counts = None
    if any(pads) and not attrs.get("count_include_pad", 0):
        counts = tuple(out.shape[2:])  # in-range positions differ at the borders: a per-position divisor
    return _sum_then_divide(name, op, x, x_idx, out, out_idx, ext, math.prod(kernel), counts)


def _sum_then_divide(name: str, op: str, x: Tensor, x_idx: tuple[str, ...], out: Tensor, out_idx: tuple[str, ...],
                     ext: dict, window: int, counts: tuple[int, ...] | None) -> list[Einsum]:
    total = Tensor(f"{name}.sum", out.dims, out.shape, out.dtype_bytes)
    point = {r: ext[r] for r in out_idx}
    if counts is None:
        divisor = Tensor(f"{name}.divisor", ("d0",), (1,), out.dtype_bytes, TensorRole.WEIGHT)
        d_idx: tuple[str, ...] = ("0",)
    else:
        divisor = Tensor(f"{name}.divisor", tuple(f"d{j}" for j in range(len(counts))), counts, out.dtype_bytes,
                         TensorRole.WEIGHT)
        d_idx = out_idx[2:]
    return [Einsum(f"{name}.sum", Operand(total, out_idx), (Operand(x, x_idx),), ext, OpKind.ADD,
                   {"kind": "pool_sum", "onnx_op": op}),
            Einsum(name, Operand(out, out_idx), (Operand(total, out_idx), Operand(divisor, d_idx)), point, OpKind.DIV,
                   {"kind": "pool_divide", "onnx_op": op, "window": window})]


def norm(op: str, name: str, ins: list[Tensor], out: Tensor, attrs: dict, where: str) -> list[Einsum]:
    x = ins[0]
    ranks = tuple(f"i{j}" for j in range(len(x.shape)))
    ext = dict(zip(ranks, x.shape))
    if op == "BatchNormalization":
        if attrs.get("training_mode", 0):
            raise AccelsimError("training_mode is not supported (inference only)", field=where)
        params = tuple(Operand(t, ("i1",)) for t in ins[1:5])  # scale, B, mean, var: one value per channel
        return [Einsum(name, Operand(out, ranks), (Operand(x, ranks), *params), ext, OpKind.NORM,
                       {"kind": "batchnorm", "onnx_op": op, "epsilon": float(attrs.get("epsilon", 1e-5))})]
    axis = int(attrs.get("axis", -1)) % len(x.shape)
    normed = ranks[axis:]
    params = tuple(Operand(t, normed[len(normed) - len(t.shape):]) for t in ins[1:3])  # scale, optional bias
    return [Einsum(name, Operand(out, ranks), (Operand(x, ranks), *params), ext, OpKind.NORM,
                   {"kind": "layernorm", "onnx_op": op, "epsilon": float(attrs.get("epsilon", 1e-5)),
                    "normalized_ranks": list(normed)})]


def concat(name: str, ins: list[Tensor], out: Tensor, attrs: dict, where: str) -> list[Einsum]:
    axis = int(attrs["axis"]) % len(out.shape)
    ranks = [f"i{j}" for j in range(len(out.shape))]
    ext = dict(zip(ranks, out.shape))
    operands, offset = [], 0
    for j, t in enumerate(ins):
        idx = list(ranks)
        idx[axis] = f"{ranks[axis]}+z" if offset == 0 else f"{ranks[axis]}-{offset}"
        operands.append(Operand(t, tuple(idx)))
        offset += t.shape[axis]
    if offset != out.shape[axis]:
        raise AccelsimError(f"inputs give {offset} along axis {axis}, the output has {out.shape[axis]}", field=where)
    if len(ins) == 1:
        return [Einsum(name, Operand(out, tuple(ranks)), (Operand(ins[0], tuple(ranks)),), ext, OpKind.COPY,
                       {"kind": "concat", "onnx_op": "Concat"})]
    return [Einsum(name, Operand(out, tuple(ranks)), tuple(operands), ext | {"z": 1}, OpKind.ADD,
                   {"kind": "concat", "onnx_op": "Concat", "flop_fraction": 0.0})]
