"""NetBuilder: appends the Einsums of a network in the order its framework runs them.

Why a builder: every network here is written as its reference implementation's forward pass
(torchvision, the DARTS/NASNet code, the FC-DenseNet Lasagne code), and the order in which the
builder is called is kept as the graph's einsum order, which is the "framework default
schedule" the COSMA baselines start from.

Modelling conventions (one place, used by every network):

* Feature maps are ``(n, c, h, w)`` (``(n, c, t, h, w)`` for video); token sequences are
  ``(n, t, d)``. Batch is 1 unless a builder is given another.
* Convolution: ``O[n, g*K+k, p, q] = I[n, g*C+c, s*p+d*r-pad, s*q+d*s-pad] * W[g*K+k, c, r, s]``
  with a group rank ``g`` when ``groups > 1``, so MACs are exact for grouped and depthwise
  convolutions (ranks of extent 1 are dropped). Every convolution and linear layer has exactly
  two operands (ifmap, weight) so ``Einsum.as_gemm`` works on it.
* Batch norm (``fold_bn=True``, default): a BN that directly follows a convolution is folded
  into it, as every 8-bit inference flow does (TFLite, TensorRT). Its shift becomes the
  convolution's per-channel bias. Biases are NOT tensors: they are recorded as
  ``attrs["bias_elements"]`` because a third operand would break the two-operand GEMM view and
  they are under 0.5% of the weight bytes. ``parameter_count`` adds them back. A BN that cannot
  be folded (pre-activation BN in FC-DenseNet and DARTS) is a ``norm`` Einsum with a ``(2, C)``
  weight tensor (scale, shift). With ``fold_bn=False`` every BN is such an Einsum and
  ``parameter_count`` equals the framework's count exactly (BN has 2 parameters per channel;
  running statistics are buffers, not parameters).
* Activations (``fuse_activations=True``, default): ReLU, hardswish, GELU, sigmoid... are fused
  into the Einsum that produces their input (``attrs["activation"]``), as TFLite fuses them into
  CONV_2D/ADD. This matches torchvision's ``ReLU(inplace=True)``: no new tensor appears. With
  ``fuse_activations=False`` each activation is a separate ``activation`` Einsum that creates a
  new tensor (out-of-place), which makes graphs about twice as long.
* Concatenation is a ``copy`` Einsum that materializes the concatenated tensor (``torch.cat``,
  TFLite CONCATENATION): its inputs are read with channel offsets ``c-offset``.
* Pooling: ``max``/``add`` Einsums with window ranks; average pooling is a sum (the constant
  scale is folded, as in integer kernels). Global average pooling is a window over the whole map.
* Bilinear upsampling is an ``add`` Einsum reading a 2x2 neighbourhood per output pixel
  (interpolation coefficients are implicit); it is not counted as MACs, as FLOP counters of
  the reference models do not count it either.
* Dropout, identity and reshapes are free and absent.
"""
from __future__ import annotations

from collections.abc import Sequence

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from workloads.cnn.token_ops import TokenOps

FMAP_DIMS = {2: ("n", "c", "h", "w"), 3: ("n", "c", "t", "h", "w")}
OUT_SPATIAL = {2: ("p", "q"), 3: ("o", "p", "q")}
KERNEL_SPATIAL = {2: ("r", "s"), 3: ("u", "r", "s")}
IN_SPATIAL = {2: ("h", "w"), 3: ("t", "h", "w")}


def _tuple(value: int | Sequence[int], nd: int, label: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * nd
    value = tuple(int(v) for v in value)
    if len(value) != nd:
        raise AccelsimError(f"needs {nd} entries, got {value}", field=label)
    return value


def _lin(coef: int, rank: str) -> str:
    return rank if coef == 1 else f"{coef}*{rank}"


def _affine(*terms: tuple[int, str], offset: int = 0) -> str:
    """Render ``sum(coef*rank) + offset`` for the IR's index parser (terms of extent-1 ranks dropped)."""
    parts = [_lin(c, r) for c, r in terms]
    text = "+".join(parts) if parts else "0"
    if offset > 0:
        text += f"+{offset}"
    elif offset < 0:
        text += f"-{-offset}"
    return text


def _broadcast(index: Sequence[str], t: Tensor, ref: Tensor) -> tuple[str, ...]:
    """``index`` with "0" wherever ``t`` has extent 1 but ``ref`` does not (broadcast read)."""
    return tuple("0" if a == 1 and b != 1 else i for i, a, b in zip(index, t.shape, ref.shape))


def _fit_plain(indices: list[str], shape: Sequence[int], extents: dict[str, int]) -> list[str]:
    """The IR requires a plain-rank index to span its dim exactly; where a window index came out
    plain but spans a different extent (e.g. a 1x1 conv with padding), add a rank z of extent 1
    (always 0) so it is checked as a window instead."""
    fixed = []
    for index, extent in zip(indices, shape):
        if index in extents and extents[index] != extent:
            index += "+z"
            extents["z"] = 1
        fixed.append(index)
    return fixed


class NetBuilder(TokenOps):
    """Accumulates Einsums; each method returns the output Tensor of what it appended."""

    def __init__(self, name: str, *, dtype_bytes: int = 1, fold_bn: bool = True,
                 fuse_activations: bool = True, batch: int = 1) -> None:
        self.name = name
        self.dtype_bytes = dtype_bytes
        self.fold_bn = fold_bn
        self.fuse_activations = fuse_activations
        self.batch = batch
        self.einsums: list[Einsum] = []
        self._names: set[str] = set()

    # --- bookkeeping ------------------------------------------------------------------
    def _name(self, name: str) -> str:
        if name in self._names:
            raise AccelsimError(f"layer name {name!r} used twice", field=f"network {self.name}")
        self._names.add(name)
        return name

    def _append(self, einsum: Einsum) -> Tensor:
        self.einsums.append(einsum)
        return einsum.output.tensor

    def tensor(self, name: str, dims: Sequence[str], shape: Sequence[int],
               role: TensorRole = TensorRole.ACTIVATION) -> Tensor:
        return Tensor(name, tuple(dims), tuple(shape), self.dtype_bytes, role)

    def input(self, name: str, channels: int, spatial: Sequence[int]) -> Tensor:
        """The network input (an image or a clip), role input."""
        nd = len(spatial)
        return self.tensor(name, FMAP_DIMS[nd], (self.batch, channels, *spatial), TensorRole.INPUT)

    def token_input(self, name: str, tokens: int, width: int) -> Tensor:
        return self.tensor(name, ("n", "t", "d"), (self.batch, tokens, width), TensorRole.INPUT)

    def graph(self) -> Graph:
        return Graph(self.name, self.einsums)

    def _like(self, name: str, x: Tensor, channels: int | None = None,
              spatial: Sequence[int] | None = None) -> Tensor:
        shape = list(x.shape)
        if channels is not None:
            shape[1] = channels
        if spatial is not None:
            shape[2:] = spatial
        return self.tensor(name, x.dims, shape)

    def _activation(self, name: str, x: Tensor, act: str | None) -> Tensor:
        """A separate out-of-place activation Einsum (only used when activations are not fused)."""
        if act is None:
            return x
        out = self._like(self._name(f"{name}.{act}"), x)
        idx = x.dims
        return self._append(Einsum(out.name, Operand(out, idx), (Operand(x, idx),),
                                   dict(zip(idx, x.shape)), OpKind.ACTIVATION, {"kind": act}))

    def _epilogue(self, act: str | None) -> tuple[dict, str | None]:
        """Attrs to fuse ``act`` into the producer, and the activation still to emit separately."""
        if act is None:
            return {}, None
        if self.fuse_activations:
            return {"activation": act}, None
        return {}, act

    # --- layers -----------------------------------------------------------------------
    def conv(self, name: str, x: Tensor, out_channels: int, kernel: int | Sequence[int], *,
             stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
             dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = False, bn: bool = True,
             act: str | None = None, shift: int | Sequence[int] = 0,
             input_activation: str | None = None) -> Tensor:
        """Convolution (2D or 3D by the input's rank), optionally followed by BN and an activation.

        ``shift`` offsets the input window (the second path of a factorized reduction reads
        ``x[..., 1:, 1:]``) without changing the output size (TensorFlow's pad-then-shift; for
        the even sizes where DARTS shifts, PyTorch's slice gives the same size).
        ``input_activation`` records an activation applied to the input as it is read (a ReLU
        fused into this consumer, see ``NetBuilder.pre_activation``).
        """
        nd = len(x.shape) - 2
        kern = _tuple(kernel, nd, f"{name}.kernel")
        strd = _tuple(stride, nd, f"{name}.stride")
        pad = _tuple(padding, nd, f"{name}.padding")
        dil = _tuple(dilation, nd, f"{name}.dilation")
        shift = _tuple(shift, nd, f"{name}.shift")
        cin = x.shape[1]
        if cin % groups or out_channels % groups:
            raise AccelsimError(f"groups {groups} must divide channels {cin} and {out_channels}",
                                field=f"{name}.groups")
        in_sp = x.shape[2:]
        out_sp = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, p, d, k, s in zip(in_sp, pad, dil, kern, strd))
        if min(out_sp) <= 0:
            raise AccelsimError(f"kernel {kern} does not fit input {in_sp}", field=f"{name}")
        kg, cg = out_channels // groups, cin // groups
        extents: dict[str, int] = {"n": self.batch}
        if groups > 1:
            extents["g"] = groups
        if kg > 1 or groups == 1:
            extents["k"] = kg
        if cg > 1 or groups == 1:
            extents["c"] = cg
        g_terms = lambda per: [(per, "g")] if groups > 1 else []  # noqa: E731
        k_idx = _affine(*g_terms(kg), *([(1, "k")] if "k" in extents else []))
        c_idx = _affine(*g_terms(cg), *([(1, "c")] if "c" in extents else []))
        out_ranks, ker_ranks = OUT_SPATIAL[nd], KERNEL_SPATIAL[nd]
        in_idx, out_idx = _window_indices(nd, strd, dil, tuple(sh - p for sh, p in zip(shift, pad)), out_sp, kern,
                                          in_sp, extents)
        w_idx = [kr if e > 1 else "0" for kr, e in zip(ker_ranks, kern)]
        # Plain ranks must match extents exactly, so extent-1 dims use the constant index "0".
        raw_name = self._name(name)
        fold = bn and self.fold_bn
        attrs: dict[str, object] = {"kind": "conv" if nd == 2 else "conv3d", "stride": strd, "padding": pad,
                                    "dilation": dil, "groups": groups, "kernel": kern}
        bias_elements = out_channels if (bias or fold) else 0
        if bias_elements:
            attrs["bias_elements"] = bias_elements
        if input_activation:
            attrs["input_activation"] = input_activation
        if fold:
            attrs["bn"] = "folded"
        act_attrs, pending = self._epilogue(act) if (fold or not bn) else ({}, None)
        attrs.update(act_attrs)
        weight = self.tensor(f"{raw_name}.weight", ("k", "c", *ker_ranks), (out_channels, cg, *kern),
                             TensorRole.WEIGHT)
        out = self._like(raw_name, x, out_channels, out_sp)
        y = self._append(Einsum(raw_name, Operand(out, ("n", k_idx, *out_idx)),
                                (Operand(x, ("n", c_idx, *in_idx)),
                                 Operand(weight, (k_idx, "c" if "c" in extents else "0", *w_idx))),
                                extents, OpKind.MAC, attrs))
        if bn and not fold:
            return self.batchnorm(f"{name}.bn", y, act=act)
        return self._activation(raw_name, y, pending)

    def batchnorm(self, name: str, x: Tensor, act: str | None = None) -> Tensor:
        """An unfolded BN (per-channel scale and shift, a ``(2, C)`` weight), optionally + activation."""
        name = self._name(name)
        params = self.tensor(f"{name}.weight", ("j", "c"), (2, x.shape[1]), TensorRole.WEIGHT)
        out = self._like(name, x)
        idx = x.dims
        extents = dict(zip(idx, x.shape))
        extents["j"] = 2
        act_attrs, pending = self._epilogue(act)
        y = self._append(Einsum(name, Operand(out, idx), (Operand(x, idx), Operand(params, ("j", "c"))),
                                extents, OpKind.NORM, {"kind": "batchnorm", **act_attrs}))
        return self._activation(name, y, pending)

    def act(self, name: str, x: Tensor, kind: str) -> Tensor:
        """A standalone activation (e.g. DARTS' ReLU before a conv): always its own Einsum.

        It cannot be fused into a producer that other consumers also read un-activated.
        """
        name = self._name(name)
        out = self._like(name, x)
        idx = x.dims
        return self._append(Einsum(name, Operand(out, idx), (Operand(x, idx),), dict(zip(idx, x.shape)),
                                   OpKind.ACTIVATION, {"kind": kind}))

    def pre_activation(self, name: str, x: Tensor, kind: str = "relu") -> tuple[Tensor, str | None]:
        """An activation applied to a tensor that other consumers read un-activated (DARTS/NASNet
        ReLU-conv-BN). Fused: returns ``(x, kind)`` and the consuming convs record it as their
        ``input_activation`` (no new tensor). Unfused: a separate out-of-place activation Einsum,
        returned as ``(activated, None)``.
        """
        if self.fuse_activations:
            return x, kind
        return self.act(name, x, kind), None

    def pool(self, name: str, x: Tensor, kind: str, kernel: int | Sequence[int], *,
             stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
             ceil_mode: bool = False, same: bool = False, act: str | None = None) -> Tensor:
        """Max or average pooling with window ranks (average = sum, its scale folded).

        ``same=True`` is TensorFlow's SAME padding: output ceil(in / stride), the padding split
        with the smaller half before (``padding`` is then ignored).
        """
        nd = len(x.shape) - 2
        kern = _tuple(kernel, nd, f"{name}.kernel")
        strd = _tuple(kernel if stride is None else stride, nd, f"{name}.stride")
        in_sp = x.shape[2:]
        if same:
            out_sp = tuple(-(-i // s) for i, s in zip(in_sp, strd))
            pad = tuple(max((o - 1) * s + k - i, 0) // 2 for o, s, k, i in zip(out_sp, strd, kern, in_sp))
        else:
            pad = _tuple(padding, nd, f"{name}.padding")
            rnd = (lambda a, b: -(-a // b)) if ceil_mode else (lambda a, b: a // b)
            out_sp = tuple(rnd(i + 2 * p - k, s) + 1 for i, p, k, s in zip(in_sp, pad, kern, strd))
        name = self._name(name)
        extents: dict[str, int] = {"n": self.batch, "c": x.shape[1]}
        in_idx, out_idx = _window_indices(nd, strd, (1,) * nd, tuple(-p for p in pad), out_sp, kern, in_sp, extents)
        op = {"max": OpKind.MAX, "avg": OpKind.ADD}.get(kind)
        if op is None:
            raise AccelsimError(f"unknown pooling {kind!r}", field=f"{name}.kind", allowed=["max", "avg"])
        act_attrs, pending = self._epilogue(act)
        out = self._like(name, x, spatial=out_sp)
        y = self._append(Einsum(name, Operand(out, ("n", "c", *out_idx)), (Operand(x, ("n", "c", *in_idx)),),
                                extents, op, {"kind": f"{kind}pool", "kernel": kern, "stride": strd,
                                              "padding": pad, **act_attrs}))
        return self._activation(name, y, pending)

    def global_pool(self, name: str, x: Tensor) -> Tensor:
        """Global average pooling to ``(n, c, 1, 1[, 1])``."""
        return self.pool(name, x, "avg", tuple(x.shape[2:]), stride=1)

    def add(self, name: str, *xs: Tensor, act: str | None = None) -> Tensor:
        """Element-wise sum of equally shaped tensors (residual add, cell node sums); the first
        operand sets the shape, later ones may broadcast along extent-1 dims (a batch-1 weight)."""
        ref = xs[0]
        for t in xs[1:]:
            if any(a != b and a != 1 for a, b in zip(t.shape, ref.shape)) or len(t.shape) != len(ref.shape):
                raise AccelsimError(f"shapes differ: {ref.shape} vs {t.shape}", field=f"{name}")
        name = self._name(name)
        idx = ref.dims
        act_attrs, pending = self._epilogue(act)
        out = self._like(name, ref)
        y = self._append(Einsum(name, Operand(out, idx), tuple(Operand(t, _broadcast(idx, t, ref)) for t in xs),
                                dict(zip(idx, ref.shape)), OpKind.ADD, {"kind": "add", **act_attrs}))
        return self._activation(name, y, pending)

    def scale(self, name: str, x: Tensor, s: Tensor) -> Tensor:
        """``x * s`` with ``s`` of shape ``(n, c, 1, 1)`` broadcast over space (SE, LR-ASPP)."""
        name = self._name(name)
        idx = x.dims
        s_idx = tuple(d if e > 1 or d in ("n", "c") else "0" for d, e in zip(s.dims, s.shape))
        s_idx = tuple(i if s.shape[k] == x.shape[k] else "0" for k, i in enumerate(s_idx))
        out = self._like(name, x)
        return self._append(Einsum(name, Operand(out, idx), (Operand(x, idx), Operand(s, s_idx)),
                                   dict(zip(idx, x.shape)), OpKind.MUL, {"kind": "scale"}))

    def concat(self, name: str, xs: Sequence[Tensor], axis: int = 1) -> Tensor:
        """Materialized concatenation along ``axis`` (a copy Einsum reading inputs at offsets)."""
        if len(xs) == 1:
            return xs[0]
        name = self._name(name)
        base = xs[0]
        total = sum(t.shape[axis] for t in xs)
        idx = list(base.dims)
        operands, offset = [], 0
        ref = max(xs, key=lambda t: t.elements // t.shape[axis])  # the operand that is not broadcast
        shape = list(ref.shape)
        shape[axis] = total
        out = self.tensor(name, base.dims, shape)
        for t in xs:
            if any(a != b and a != 1 for k, (a, b) in enumerate(zip(t.shape, ref.shape)) if k != axis):
                raise AccelsimError(f"cannot concatenate {t.shape} with {ref.shape}", field=name)
            ti = list(_broadcast(idx, t, out))
            # The IR requires a plain rank to span its dim exactly, so the piece at offset 0 is
            # indexed "c+z" with a rank z of extent 1 (always 0): a window like the others.
            ti[axis] = _affine((1, idx[axis]), offset=-offset) if offset else f"{idx[axis]}+z"
            operands.append(Operand(t, tuple(ti)))
            offset += t.shape[axis]
        extents = dict(zip(idx, shape))
        extents["z"] = 1
        return self._append(Einsum(name, Operand(out, tuple(idx)), tuple(operands),
                                   extents, OpKind.COPY, {"kind": "concat"}))

    def upsample(self, name: str, x: Tensor, size: Sequence[int]) -> Tensor:
        """Bilinear interpolation to ``size``: each output pixel reads a 2x2 input neighbourhood.

        With an integer factor f the output index is ``f*a+b``; otherwise f = ceil(out/in) and
        the index reaches a little past the output (harmless padding in the IR). A 1x1 input is
        a broadcast copy.
        """
        size = tuple(size)
        in_sp = x.shape[2:]
        if tuple(in_sp) == size:
            return x
        name = self._name(name)
        out = self._like(name, x, spatial=size)
        extents: dict[str, int] = {"n": self.batch, "c": x.shape[1]}
        out_idx, in_idx = [], []
        if all(i == 1 for i in in_sp):
            for o, e in zip(OUT_SPATIAL[2], size):
                extents[o] = e
                out_idx.append(o)
                in_idx.append("0")
            return self._append(Einsum(name, Operand(out, ("n", "c", *out_idx)),
                                       (Operand(x, ("n", "c", *in_idx)),), extents, OpKind.COPY,
                                       {"kind": "broadcast"}))
        for (a, b, tap), i, o in zip((("a", "b", "u"), ("e", "f", "v")), in_sp, size):
            factor = -(-o // i)
            extents[a] = i
            extents[b] = factor
            extents[tap] = 2
            out_idx.append(f"{factor}*{a}+{b}")
            in_idx.append(f"{a}+{tap}")
        return self._append(Einsum(name, Operand(out, ("n", "c", *out_idx)), (Operand(x, ("n", "c", *in_idx)),),
                                   extents, OpKind.ADD, {"kind": "upsample_bilinear"}))

    def transposed_conv(self, name: str, x: Tensor, out_channels: int, kernel: int, stride: int,
                        out_size: Sequence[int], bias: bool = True) -> Tensor:
        """Transposed convolution in scatter form ``O[k, s*i+r, s*j+t] += I[c, i, j] * W[c, k, r, t]``.

        ``out_size`` is the output kept after cropping (FC-DenseNet crops 'valid' output to the
        skip connection); MACs are C*K*I*J*R*T, the usual count.
        """
        name = self._name(name)
        cin, (hi, wi) = x.shape[1], x.shape[2:]
        extents = {"n": self.batch, "k": out_channels, "c": cin, "i": hi, "j": wi, "r": kernel, "s": kernel}
        weight = self.tensor(f"{name}.weight", ("c", "k", "r", "s"), (cin, out_channels, kernel, kernel),
                             TensorRole.WEIGHT)
        out = self._like(name, x, out_channels, out_size)
        attrs: dict[str, object] = {"kind": "conv_transpose", "stride": stride, "kernel": kernel}
        if bias:
            attrs["bias_elements"] = out_channels
        return self._append(Einsum(name, Operand(out, ("n", "k", f"{stride}*i+r", f"{stride}*j+s")),
                                   (Operand(x, ("n", "c", "i", "j")), Operand(weight, ("c", "k", "r", "s"))),
                                   extents, OpKind.MAC, attrs))

    # --- token (sequence) layers --------------------------------------------------------


def parameter_count(graph: Graph) -> int:
    """Weight tensor elements plus the biases recorded in einsum attrs (see module docstring)."""
    weights = sum(t.elements for t in graph.tensors.values() if t.role is TensorRole.WEIGHT)
    return weights + sum(int(e.attrs.get("bias_elements", 0)) for e in graph.einsums)


def weight_elements(graph: Graph) -> int:
    """Elements of the weight tensors only (what a scratchpad must hold)."""
    return sum(t.elements for t in graph.tensors.values() if t.role is TensorRole.WEIGHT)


def _window_indices(nd: int, strides, dilations, offsets, out_sp, kern, in_sp, extents: dict[str, int]):
    """Sliding-window indices shared by convolution and pooling: the input index of each spatial
    dim is ``stride*out + dilation*kernel + offset``; extent-1 ranks are left out (and the output
    uses the constant index ``0``) because the IR requires a plain rank to span its dim exactly.
    Adds the spatial ranks it uses to ``extents``."""
    in_idx, out_idx = [], []
    for o, kr, s, d, off, o_ext, k_ext in zip(OUT_SPATIAL[nd], KERNEL_SPATIAL[nd], strides, dilations, offsets,
                                              out_sp, kern):
        terms = []
        if o_ext > 1:
            extents[o] = o_ext
            terms.append((s, o))
        if k_ext > 1:
            extents[kr] = k_ext
            terms.append((d, kr))
        in_idx.append(_affine(*terms, offset=off))
        out_idx.append(o if o_ext > 1 else "0")
    return _fit_plain(in_idx, in_sp, extents), out_idx


__all__ = ["NetBuilder", "parameter_count", "weight_elements"]
