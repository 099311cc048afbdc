"""An ONNX model (a local file or a ModelProto) becomes a Graph of Einsums.

Supported: MatMul (with broadcast batch dims), Gemm (transA/transB, bias), Conv (N-d with
strides, pads, dilations, groups; bias), MaxPool/AveragePool/GlobalAveragePool,
BatchNormalization (inference), LayerNormalization and Concat (``workloads.importers.onnx_ops``), Softmax, element-wise Add/Sub/Mul/Div/Max/Pow with
numpy broadcasting, unary Relu/Sigmoid/Tanh/Erf/Gelu/LeakyRelu/Exp/Sqrt/Neg/Identity, and the
layout ops Transpose (an exact permuting copy) and Reshape/Flatten/Squeeze/Unsqueeze (a copy
whose indices are affine in the common refinement of the two shapes, so merging and splitting
dims is exact). Constant nodes and initializers become weights. Any other operator, or a
reshape that is not a merge/split of contiguous dims, raises one AccelsimError listing every
offending node: nothing is dropped silently.

Shapes come from ONNX shape inference and must be static.
"""
from __future__ import annotations

import math
from pathlib import Path

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from workloads.importers import onnx_ops

BINARY = {"Add": OpKind.ADD, "Sub": OpKind.SUB, "Mul": OpKind.MUL, "Div": OpKind.DIV, "Max": OpKind.MAX,
          "Pow": OpKind.MUL}
UNARY = {"Relu": OpKind.ACTIVATION, "Sigmoid": OpKind.ACTIVATION, "Tanh": OpKind.ACTIVATION,
         "Erf": OpKind.ACTIVATION, "Gelu": OpKind.ACTIVATION, "LeakyRelu": OpKind.ACTIVATION, "Exp": OpKind.EXP,
         "Sqrt": OpKind.ACTIVATION, "Neg": OpKind.MUL, "Identity": OpKind.COPY}
LAYOUT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
SUPPORTED = sorted({"MatMul", "Gemm", "Conv", "Softmax", "Transpose", "Constant", *BINARY, *UNARY, *LAYOUT,
                    *onnx_ops.OPS})

# ONNX TensorProto element types -> bytes per element (onnx.TensorProto.DataType enum values:
# FLOAT 1, UINT8 2, INT8 3, UINT16 4, INT16 5, INT32 6, INT64 7, BOOL 9, FLOAT16 10, DOUBLE 11,
# UINT32 12, UINT64 13, COMPLEX64 14, COMPLEX128 15, BFLOAT16 16, FLOAT8E4M3FN 17,
# FLOAT8E4M3FNUZ 18, FLOAT8E5M2 19, FLOAT8E5M2FNUZ 20, FLOAT8E8M0 24). Sub-byte types (INT4,
# UINT4, FLOAT4E2M1, INT2, FLOAT6...) cannot be sized in whole bytes per element, and STRING or
# UNDEFINED have no size: those raise an error naming the type rather than guessing 4 bytes.
_ELEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
               17: 1, 18: 1, 19: 1, 20: 1, 24: 1}


def _type_name(elem_type: int) -> str:
    """The enum name, where the installed onnx knows it (older releases lack the newest types)."""
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def elem_bytes(elem_type: int, tensor: str) -> int:
    """Bytes per element of an ONNX element type; an error naming the type when it has no whole-byte size."""
    if elem_type in _ELEM_BYTES:
        return _ELEM_BYTES[elem_type]
    allowed = sorted(_type_name(t) for t in _ELEM_BYTES)
    type_name = _type_name(elem_type)
    raise AccelsimError(f"tensor {tensor!r} has element type {type_name}, which has no whole-byte size here",
                        field="onnx.elem_type", allowed=allowed)


def _fix_dims(model, dims: dict[str, int]) -> None:
    """Give the named dynamic dimensions (``dim_param``) their values, in place, before shape inference.

    Why: an exported model usually has a symbolic batch or sequence length; costs need numbers,
    and guessing one would be a silently wrong result, so each must be given (``--dim name=N``).
    """
    g = model.graph
    named = {d.dim_param for vi in (*g.input, *g.output, *g.value_info) for d in vi.type.tensor_type.shape.dim
             if d.HasField("dim_param")}
    unknown = sorted(set(dims) - named)
    if unknown:
        raise AccelsimError(f"no dynamic dimension named {unknown[0]!r} in the model", field="--dim",
                            allowed=sorted(named) or "none (every dimension is static)")
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AccelsimError(f"must be a positive integer, got {value!r}", field=f"--dim {name}")
    missing = sorted(named - set(dims))
    if missing:
        raise AccelsimError(f"dynamic dimensions {missing} need values", field="--dim",
                            allowed=", ".join(f"{m}=N" for m in missing))
    for vi in (*g.input, *g.output, *g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.dim_value = dims[d.dim_param]  # setting the value clears the oneof's dim_param


def graph_from_onnx(model_or_path, name: str | None = None, dims: dict[str, int] | None = None) -> Graph:
    """Translate an ONNX ModelProto or ``.onnx`` path into a Graph; ``dims`` gives dynamic dimensions
    (``dim_param`` names) their values, and every dynamic dimension must be given one."""
    import onnx
    from onnx import shape_inference

    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        if not path.exists():
            raise AccelsimError("file not found", source=str(path))
        try:
            model = onnx.load(str(path))
        except Exception as err:  # onnx raises DecodeError and others
            raise AccelsimError(f"not a readable ONNX model: {err}", source=str(path)) from None
        name = name or path.stem
    else:
        model = model_or_path
    model_copy = type(model)()
    model_copy.CopyFrom(model)  # the caller's model is not modified
    _fix_dims(model_copy, dict(dims or {}))
    g = shape_inference.infer_shapes(model_copy).graph
    name = name or g.name or "onnx"

    bad = [f"{n.name or '(unnamed)'}:{n.op_type}" for n in g.node if n.op_type not in SUPPORTED]
    if bad:
        raise AccelsimError(f"unsupported ONNX operators: {', '.join(bad)}", field="onnx.node", allowed=SUPPORTED)
    extra = [f"{n.name or '(unnamed)'}:{n.op_type}" for n in g.node if len([o for o in n.output if o]) > 1]
    if extra:  # MaxPool Indices, BatchNormalization running stats, LayerNormalization Mean/InvStdDev
        raise AccelsimError(f"nodes with more than one output are not supported: {', '.join(extra)}",
                            field="onnx.node.output", allowed="the first output only")

    shapes: dict[str, tuple[tuple[int, ...], int]] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        shapes[vi.name] = (dims, elem_bytes(tt.elem_type, vi.name))
    roles: dict[str, TensorRole] = {}
    for init in g.initializer:
        shapes[init.name] = (tuple(init.dims), elem_bytes(init.data_type, init.name))
        roles[init.name] = TensorRole.WEIGHT
    for n in g.node:
        if n.op_type == "Constant":
            if n.attribute[0].HasField("t"):
                const = n.attribute[0].t
                shapes[n.output[0]] = (tuple(const.dims), elem_bytes(const.data_type, n.output[0]))
            roles[n.output[0]] = TensorRole.WEIGHT
    for vi in g.input:
        roles.setdefault(vi.name, TensorRole.INPUT)

    tensors: dict[str, Tensor] = {}

    def tensor(tname: str) -> Tensor:
        if tname not in tensors:
            if tname not in shapes or any(d <= 0 for d in shapes[tname][0]):
                raise AccelsimError(f"tensor {tname!r} has no static shape after shape inference",
                                    field="onnx.value_info")
            dims, nbytes = shapes[tname]
            tensors[tname] = Tensor(tname, tuple(f"d{i}" for i in range(len(dims))), dims, nbytes,
                                    roles.get(tname, TensorRole.ACTIVATION))
        return tensors[tname]

    einsums: list[Einsum] = []
    for i, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        nname = node.name or f"{node.op_type.lower()}_{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        einsums.extend(_translate(node.op_type, nname, [tensor(x) for x in node.input if x], tensor(node.output[0]),
                                  attrs))
    return Graph(name, einsums)


def _broadcast_index(t: Tensor, out_ranks: list[str], out_shape: tuple[int, ...]) -> tuple[str, ...]:
    """numpy broadcasting: align right; a size-1 dim against a larger one reads index 0."""
    off = len(out_shape) - len(t.shape)
    idx = []
    for j, size in enumerate(t.shape):
        o = j + off
        idx.append("0" if size == 1 and out_shape[o] != 1 else out_ranks[o])
    return tuple(idx)


def _translate(op: str, name: str, ins: list[Tensor], out: Tensor, attrs: dict) -> list[Einsum]:
    where = f"onnx node {name} ({op})"
    ranks = [f"i{j}" for j in range(len(out.shape))]
    ext = dict(zip(ranks, out.shape))
    if op in BINARY or op in UNARY or op == "Softmax":
        kind = BINARY.get(op) or UNARY.get(op) or OpKind.EXP
        operands = tuple(Operand(t, _broadcast_index(t, ranks, out.shape)) for t in (ins if op in BINARY else ins[:1]))
        return [Einsum(name, Operand(out, tuple(ranks)), operands, ext, kind,
                       {"kind": op.lower(), "onnx_op": op})]
    if op == "Transpose":
        perm = list(attrs.get("perm", reversed(range(len(out.shape)))))
        in_idx = [""] * len(perm)
        for o, p in enumerate(perm):
            in_idx[p] = ranks[o]
        return [Einsum(name, Operand(out, tuple(ranks)), (Operand(ins[0], tuple(in_idx)),), ext, OpKind.COPY,
                       {"kind": "transpose", "onnx_op": op})]
    if op in LAYOUT:
        return [_reshape(name, ins[0], out, op)]
    if op == "MatMul":
        return _matmul(name, ins[0], ins[1], out, where)
    if op == "Gemm":
        a, b = ins[0], ins[1]
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise AccelsimError("Gemm needs 2-D A and B", field=where)
        a_idx = ("k", "m") if attrs.get("transA", 0) else ("m", "k")
        b_idx = ("n", "k") if attrs.get("transB", 0) else ("k", "n")
        k = a.shape[a_idx.index("k")]
        m, n = out.shape
        mm = out if len(ins) < 3 else Tensor(f"{name}.matmul", ("d0", "d1"), out.shape, out.dtype_bytes)
        res = [Einsum(name if len(ins) < 3 else f"{name}.matmul", Operand(mm, ("m", "n")),
                      (Operand(a, a_idx), Operand(b, b_idx)), {"m": m, "k": k, "n": n}, OpKind.MAC,
                      {"kind": "gemm", "onnx_op": op})]
        if len(ins) >= 3:
            c = ins[2]
            res.append(Einsum(name, Operand(out, ("m", "n")),
                              (Operand(mm, ("m", "n")), Operand(c, _broadcast_index(c, ["m", "n"], out.shape))),
                              {"m": m, "n": n}, OpKind.ADD, {"kind": "bias", "onnx_op": op}))
        return res
    if op == "Conv":
        return _conv(name, ins, out, attrs, where)
    if op in onnx_ops.POOLING:
        return onnx_ops.pooling(op, name, ins[0], out, attrs, where)
    if op in onnx_ops.NORMS:
        return onnx_ops.norm(op, name, ins, out, attrs, where)
    if op == "Concat":
        return onnx_ops.concat(name, ins, out, attrs, where)
    raise AccelsimError(f"unsupported ONNX operator {op}", field=where, allowed=SUPPORTED)  # pragma: no cover


def _matmul(name: str, a: Tensor, b: Tensor, out: Tensor, where: str) -> list[Einsum]:
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise AccelsimError("MatMul with a 1-D operand is not supported", field=where)
    nb = len(out.shape) - 2
    batch = [f"b{j}" for j in range(nb)]
    out_idx = (*batch, "m", "n")
    ext = dict(zip(batch, out.shape[:nb])) | {"m": out.shape[-2], "n": out.shape[-1], "k": a.shape[-1]}

    def idx(t: Tensor, last2: tuple[str, str]) -> tuple[str, ...]:
        off = nb - (len(t.shape) - 2)
        lead = ["0" if s == 1 and out.shape[j + off] != 1 else batch[j + off] for j, s in enumerate(t.shape[:-2])]
        return (*lead, *last2)

    return [Einsum(name, Operand(out, out_idx), (Operand(a, idx(a, ("m", "k"))), Operand(b, idx(b, ("k", "n")))),
                   ext, OpKind.MAC, {"kind": "gemm", "onnx_op": "MatMul"})]


def _conv(name: str, ins: list[Tensor], out: Tensor, attrs: dict, where: str) -> list[Einsum]:
    x, w = ins[0], ins[1]
    nsp = len(x.shape) - 2
    groups = int(attrs.get("group", 1))
    strides = list(attrs.get("strides", [1] * nsp))
    dil = list(attrs.get("dilations", [1] * nsp))
    pads = list(attrs.get("pads", [0] * 2 * nsp))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise AccelsimError("auto_pad is not supported; give explicit pads", field=where)
    k_total, cg = w.shape[0], w.shape[1]
    kg = k_total // groups
    sp_out = [f"p{j}" for j in range(nsp)]
    sp_win = [f"r{j}" for j in range(nsp)]
    ext = {"n": out.shape[0], "k": kg, "c": cg, **dict(zip(sp_out, out.shape[2:])), **dict(zip(sp_win, w.shape[2:]))}
    kidx, cidx = "k", "c"
    if groups > 1:
        ext["g"] = groups
        kidx, cidx = f"{kg}*g+k", f"{cg}*g+c"

    def term(coef: int, rank: str) -> str:
        return rank if coef == 1 else f"{coef}*{rank}"

    x_sp = [f"{term(strides[j], sp_out[j])}+{term(dil[j], sp_win[j])}" + (f"-{pads[j]}" if pads[j] else "")
            for j in range(nsp)]
    conv_out = out if len(ins) < 3 else Tensor(f"{name}.conv", out.dims, out.shape, out.dtype_bytes)
    res = [Einsum(name if len(ins) < 3 else f"{name}.conv", Operand(conv_out, ("n", kidx, *sp_out)),
                  (Operand(x, ("n", cidx, *x_sp)), Operand(w, (kidx, "c", *sp_win))), ext, OpKind.MAC,
                  {"kind": "conv", "onnx_op": "Conv", "stride": strides, "padding": pads, "group": groups})]
    if len(ins) >= 3:
        ranks = [f"i{j}" for j in range(len(out.shape))]
        res.append(Einsum(name, Operand(out, tuple(ranks)), (Operand(conv_out, tuple(ranks)), Operand(ins[2], ("i1",))),
                          dict(zip(ranks, out.shape)), OpKind.ADD, {"kind": "bias", "onnx_op": "Conv"}))
    return res


def _reshape(name: str, a: Tensor, out: Tensor, op: str) -> Einsum:
    """A row-major reshape as a copy over the common refinement of the two shapes."""
    def bounds(shape: tuple[int, ...]) -> list[int]:
        return [math.prod(shape[i:]) for i in range(len(shape) + 1)]  # suffix products, N ... 1

    chain = sorted(set(bounds(a.shape)) | set(bounds(out.shape)))
    if any(chain[j + 1] % chain[j] for j in range(len(chain) - 1)):
        raise AccelsimError(f"reshape {a.shape} -> {out.shape} is not a merge/split of contiguous dims",
                            field=f"onnx node {name} ({op})")
    # refinement rank j spans suffix products chain[j] .. chain[j+1]
    ranks = [(f"f{j}", chain[j + 1] // chain[j], chain[j]) for j in range(len(chain) - 1)]

    def index(shape: tuple[int, ...]) -> tuple[str, ...]:
        idx = []
        for i in range(len(shape)):
            lo, hi = math.prod(shape[i + 1:]), math.prod(shape[i:])
            terms = [(r, stride // lo) for r, size, stride in ranks if stride >= lo and stride * size <= hi]
            idx.append("+".join(r if c == 1 else f"{c}*{r}" for r, c in terms) or "0")
        return tuple(idx)

    return Einsum(name, Operand(out, index(out.shape)), (Operand(a, index(a.shape)),),
                  {r: size for r, size, _ in ranks} or {"f": 1}, OpKind.COPY, {"kind": op.lower(), "onnx_op": op})
