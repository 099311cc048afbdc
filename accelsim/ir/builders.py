"""Small builders of single Einsums (a GEMM, a 2D convolution) for tests, examples and users.

Why apart from the core: the IR's types do not depend on these conveniences.
"""
from __future__ import annotations

from accelsim.errors import AccelsimError
from accelsim.ir.core import Einsum, Operand, OpKind, Tensor, TensorRole


def gemm(name: str, m: int, k: int, n: int, *, dtype_bytes: int = 2, a: str | None = None,
         b: str | None = None, out: str | None = None, b_role: TensorRole = TensorRole.WEIGHT,
         a_role: TensorRole = TensorRole.INPUT) -> Einsum:
    """``out[m,n] = a[m,k] * b[k,n]``; b is a weight unless told otherwise."""
    for label, v in (("m", m), ("k", k), ("n", n)):
        if not isinstance(v, int) or v <= 0:
            raise AccelsimError(f"must be a positive integer, got {v!r}", field=f"gemm {name}.{label}")
    ta = Tensor(a or f"{name}.A", ("m", "k"), (m, k), dtype_bytes, a_role)
    tb = Tensor(b or f"{name}.B", ("k", "n"), (k, n), dtype_bytes, b_role)
    to = Tensor(out or f"{name}.out", ("m", "n"), (m, n), dtype_bytes, TensorRole.ACTIVATION)
    return Einsum(name, Operand(to, ("m", "n")), (Operand(ta, ("m", "k")), Operand(tb, ("k", "n"))),
                  {"m": m, "k": k, "n": n}, OpKind.MAC, {"kind": "gemm"})


def conv2d(name: str, *, ifmap_h: int, ifmap_w: int, channels: int, filters: int, filter_h: int,
           filter_w: int, stride: int = 1, batch: int = 1, padding: int = 0, dtype_bytes: int = 1,
           ifmap: str | None = None, weight: str | None = None, out: str | None = None,
           ifmap_role: TensorRole = TensorRole.INPUT) -> Einsum:
    """A 2D convolution ``O[n,k,p,q] = I[n,c,s*p+r-pad,s*q+t-pad] * W[k,c,r,t]``.

    ``ifmap_h``/``ifmap_w`` are the unpadded input sizes; the output size follows PyTorch's
    ``floor((H + 2*pad - R) / stride) + 1`` (SCALE-Sim's topology files give padded sizes and
    pad 0, which this reproduces).
    """
    values = dict(ifmap_h=ifmap_h, ifmap_w=ifmap_w, channels=channels, filters=filters, filter_h=filter_h,
                  filter_w=filter_w, stride=stride, batch=batch)
    for label, v in values.items():
        if not isinstance(v, int) or v <= 0:
            raise AccelsimError(f"must be a positive integer, got {v!r}", field=f"conv {name}.{label}")
    if padding < 0:
        raise AccelsimError(f"must be >= 0, got {padding}", field=f"conv {name}.padding")
    out_h = (ifmap_h + 2 * padding - filter_h) // stride + 1
    out_w = (ifmap_w + 2 * padding - filter_w) // stride + 1
    if out_h <= 0 or out_w <= 0:
        raise AccelsimError(f"filter {filter_h}x{filter_w} is larger than the padded input "
                            f"{ifmap_h + 2 * padding}x{ifmap_w + 2 * padding}", field=f"conv {name}")
    ti = Tensor(ifmap or f"{name}.ifmap", ("n", "c", "h", "w"), (batch, channels, ifmap_h, ifmap_w), dtype_bytes,
                ifmap_role)
    tw = Tensor(weight or f"{name}.weight", ("k", "c", "r", "s"), (filters, channels, filter_h, filter_w),
                dtype_bytes, TensorRole.WEIGHT)
    to = Tensor(out or f"{name}.ofmap", ("n", "k", "p", "q"), (batch, filters, out_h, out_w), dtype_bytes,
                TensorRole.ACTIVATION)
    pad = f"-{padding}" if padding else ""
    h_index = f"{stride}*p+r{pad}" if stride != 1 else f"p+r{pad}"
    w_index = f"{stride}*q+s{pad}" if stride != 1 else f"q+s{pad}"
    extents = {"n": batch, "k": filters, "c": channels, "p": out_h, "q": out_w, "r": filter_h, "s": filter_w}
    return Einsum(name, Operand(to, ("n", "k", "p", "q")),
                  (Operand(ti, ("n", "c", h_index, w_index)), Operand(tw, ("k", "c", "r", "s"))),
                  extents, OpKind.MAC, {"kind": "conv", "stride": stride, "padding": padding})
