"""A small numpy executor: evaluate any accelsim Graph on real arrays.

Why: a cascade of Einsums is only worth simulating if it computes what it claims. This
executor gives every OpKind a concrete meaning so tests can check, on random inputs, that the
3-, 2- and 1-pass attention cascades equal ``softmax(QK^T) V`` (and that a GEMM equals
``a @ b``). It is a reference, written for clarity, not speed: each Einsum is evaluated over
its whole iteration space at once with broadcasting.

Semantics, per Einsum ``out[index] = f(inputs[index]...)`` over the ranks in ``extents``:

- Each input operand is gathered over the iteration space. Index entries may be affine
  (``"256*m1+m0"``, ``"m1-1"``, a constant ``"3"``); a point whose index falls outside the
  tensor reads the operand's *pad value*: ``attrs["pad"][tensor_name]`` if given, else 0.
  (Padding is how a partial last tile is expressed: keys beyond ``M`` read ``-inf`` for a
  score and 0 for a value.)
- The point value by op kind (inputs in operand order ``x0, x1, ...``):
  ``mac`` and ``mul``: the product of all inputs; ``add``: their sum; ``sub``: ``x0 - x1 - ...``;
  ``div``: ``x0 / x1 / ...``; ``max``: the element-wise maximum; ``exp``: ``exp(x0 - x1 - ...)``
  (a multi-input exp is the exponential of the difference, the form ``exp(QK - GM)`` every
  softmax cascade uses); ``copy``: ``x0``; ``activation``: GELU (tanh form) of ``x0``.
- Ranks absent from the output are reduced: ``mac`` and ``add`` sum, ``max`` takes the max,
  ``mul`` multiplies. Other kinds may not reduce (an error names the Einsum).
- ``attrs["empty_value"] = v``: an output element none of whose points reads every input in
  range (it holds no real data, such as a score for a key beyond ``M`` in a partial tile)
  takes ``v`` (``-inf`` for scores, so the softmax ignores it).
- ``attrs["scan"] = rank`` makes a rank of the output a *running* reduction (a recurrence):
  ``out[s] = op(out[s-1], value[s])`` with the identity before ``s = 0``. With
  ``attrs["carry_scale"] = tensor`` (only for ``add``), that input is not summed in but scales
  the carried value: ``out[s] = value[s] + scale[s] * out[s-1]`` (the online-softmax update
  ``RD[m1] = SLD[m1] + PRM[m1] * RD[m1-1]``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, OpKind, Operand

_SUM_REDUCE = {OpKind.MAC, OpKind.ADD}


def _gather(operand: Operand, array: np.ndarray, ranks: list[str], extents: Mapping[str, int],
            pad: float) -> np.ndarray:
    """The operand's value at every point of the iteration space (broadcastable shape)."""
    if array.shape != operand.tensor.shape:
        raise AccelsimError(f"array shape {array.shape} does not match tensor shape {operand.tensor.shape}",
                            field=f"tensor {operand.tensor.name}")
    ndim = len(ranks)
    idx_arrays = []
    for affine in operand.affine:
        idx = np.full((1,) * ndim, affine.offset, dtype=np.int64)
        for rank, coef in affine.coefs:
            axis = ranks.index(rank)
            shape = [1] * ndim
            shape[axis] = extents[rank]
            idx = idx + coef * np.arange(extents[rank], dtype=np.int64).reshape(shape)
        idx_arrays.append(idx)
    idx_arrays = np.broadcast_arrays(*idx_arrays) if idx_arrays else []
    valid = np.ones(idx_arrays[0].shape if idx_arrays else (1,) * ndim, dtype=bool)
    clipped = []
    for idx, extent in zip(idx_arrays, operand.tensor.shape):
        valid &= (idx >= 0) & (idx < extent)
        clipped.append(np.clip(idx, 0, extent - 1))
    values = array[tuple(clipped)] if clipped else np.asarray(array).reshape((1,) * ndim)
    if not valid.all():
        values = np.where(valid, values, pad)
    return values, valid


def _point_value(einsum: Einsum, xs: list[np.ndarray]) -> np.ndarray:
    op = einsum.op
    if op in (OpKind.MAC, OpKind.MUL):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out
    if op is OpKind.ADD:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out
    if op in (OpKind.SUB, OpKind.EXP):
        out = xs[0]
        for x in xs[1:]:
            # -inf - -inf is the empty running max before any key: define it as -inf so exp gives 0
            with np.errstate(invalid="ignore"):
                out = np.where(np.isneginf(out) & np.isneginf(x), -np.inf, out - x)
        return np.exp(out) if op is OpKind.EXP else out
    if op is OpKind.DIV:
        out = xs[0]
        for x in xs[1:]:
            out = out / x
        return out
    if op is OpKind.MAX:
        out = xs[0]
        for x in xs[1:]:
            out = np.maximum(out, x)
        return out
    if op is OpKind.COPY:
        return xs[0]
    if op is OpKind.ACTIVATION:
        x = xs[0]
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    raise AccelsimError(f"the executor has no semantics for op {op.value}", field=f"einsum {einsum.name}",
                        allowed=[k.value for k in (OpKind.MAC, OpKind.MUL, OpKind.ADD, OpKind.SUB, OpKind.DIV,
                                                   OpKind.MAX, OpKind.EXP, OpKind.COPY, OpKind.ACTIVATION)])


def _reduce(einsum: Einsum, value: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if not axes:
        return value
    if einsum.op in _SUM_REDUCE:
        return value.sum(axis=axes)
    if einsum.op is OpKind.MAX:
        return value.max(axis=axes)
    if einsum.op is OpKind.MUL:
        return value.prod(axis=axes)
    raise AccelsimError(f"op {einsum.op.value} cannot reduce ranks "
                        f"{sorted(einsum.reduction_ranks())}", field=f"einsum {einsum.name}",
                        allowed="mac, add, max or mul for reductions")


def evaluate_einsum(einsum: Einsum, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The output array of one Einsum given arrays for its inputs."""
    ranks = list(einsum.extents)
    extents = einsum.extents
    pads = dict(einsum.attrs.get("pad", {}))
    scale_name = einsum.attrs.get("carry_scale")
    scan = einsum.attrs.get("scan")
    xs, scale, all_valid = [], None, None
    for operand in einsum.inputs:
        name = operand.tensor.name
        if name not in arrays:
            raise AccelsimError(f"no array for input tensor {name!r}", field=f"einsum {einsum.name}")
        gathered, valid = _gather(operand, np.asarray(arrays[name], dtype=float), ranks, extents,
                                  pads.get(name, 0.0))
        all_valid = valid if all_valid is None else (all_valid & valid)
        if name == scale_name:
            scale = gathered
        else:
            xs.append(gathered)
    full = tuple(extents[r] for r in ranks)
    value = np.broadcast_to(_point_value(einsum, xs), full)
    out_ranks = []
    for entry in einsum.output.affine:
        if len(entry.coefs) != 1 or entry.coefs[0][1] != 1 or entry.offset != 0:
            raise AccelsimError("output indices must be plain ranks", field=f"einsum {einsum.name}")
        out_ranks.append(entry.coefs[0][0])
    red_axes = tuple(i for i, r in enumerate(ranks) if r not in out_ranks)
    reduced = _reduce(einsum, value, red_axes)
    if "empty_value" in einsum.attrs and all_valid is not None:
        has_data = np.broadcast_to(all_valid, full).any(axis=red_axes) if red_axes else np.broadcast_to(all_valid, full)
        reduced = np.where(has_data, reduced, float(einsum.attrs["empty_value"]))
    kept = [r for r in ranks if r in out_ranks]
    if scan is not None:
        if scan not in kept:
            raise AccelsimError(f"scan rank {scan!r} is not an output rank", field=f"einsum {einsum.name}",
                                allowed=kept)
        axis = kept.index(scan)
        if scale is not None:
            if einsum.op is not OpKind.ADD:
                raise AccelsimError("carry_scale needs op add", field=f"einsum {einsum.name}")
            scale_r = np.broadcast_to(scale, full)
            # the scale must not vary along reduced ranks: take index 0 of each
            scale_r = scale_r[tuple(0 if i in red_axes else slice(None) for i in range(len(ranks)))]
            out = np.array(reduced, dtype=float, copy=True)
            for s in range(1, out.shape[axis]):
                prev = np.take(out, s - 1, axis=axis)
                cur = np.take(out, s, axis=axis) + np.take(scale_r, s, axis=axis) * prev
                idx = [slice(None)] * out.ndim
                idx[axis] = s
                out[tuple(idx)] = cur
            reduced = out
        elif einsum.op is OpKind.MAX:
            reduced = np.maximum.accumulate(reduced, axis=axis)
        elif einsum.op in _SUM_REDUCE:
            reduced = np.cumsum(reduced, axis=axis)
        else:
            raise AccelsimError(f"op {einsum.op.value} cannot scan", field=f"einsum {einsum.name}",
                                allowed="max, add or mac")
    order = [kept.index(r) for r in out_ranks]
    return np.ascontiguousarray(np.transpose(reduced, order))


def execute(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of ``graph`` (inputs included) evaluated in topological order."""
    arrays: dict[str, np.ndarray] = {}
    for tensor in graph.inputs:
        if tensor.name not in inputs:
            raise AccelsimError(f"missing array for graph input {tensor.name!r}", field="inputs",
                                allowed=[t.name for t in graph.inputs])
        arrays[tensor.name] = np.asarray(inputs[tensor.name], dtype=float)
    for einsum in graph.topological_order():
        arrays[einsum.output.tensor.name] = evaluate_einsum(einsum, arrays)
    return arrays
