"""The IR's derived quantities against direct counts, and its validation."""
from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole, conv2d, gemm


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64), st.integers(1, 4))
def test_gemm_flops_and_bytes_follow_from_extents(m, k, n, dtype):
    e = gemm("g", m, k, n, dtype_bytes=dtype)
    assert e.flops == 2 * m * k * n
    assert e.bytes == dtype * (m * k + k * n + m * n)
    g = e.as_gemm()
    assert (g.m, g.k, g.n, g.batch) == (m, k, n, 1)
    assert e.reuse()["g.A"] == n  # each A element meets every column of B


@settings(max_examples=30)
@given(h=st.integers(3, 12), w=st.integers(3, 12), c=st.integers(1, 4), k=st.integers(1, 4),
       r=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 1))
def test_conv_lowering_counts_the_same_macs_as_a_direct_loop(h, w, c, k, r, stride, pad):
    e = conv2d("c", ifmap_h=h, ifmap_w=w, channels=c, filters=k, filter_h=r, filter_w=r, stride=stride,
               padding=pad)
    out_h = (h + 2 * pad - r) // stride + 1
    out_w = (w + 2 * pad - r) // stride + 1
    direct = sum(1 for _ in itertools.product(range(k), range(out_h), range(out_w), range(c), range(r), range(r)))
    assert e.macs == direct
    g = e.as_gemm()
    assert (g.m, g.k, g.n) == (out_h * out_w, r * r * c, k)


def test_batched_matmul_keeps_heads_as_batch():
    q = Tensor("q", ("h", "p", "e"), (4, 8, 16))
    kt = Tensor("k", ("h", "e", "m"), (4, 16, 32), role=TensorRole.KV_CACHE)
    s = Tensor("s", ("h", "p", "m"), (4, 8, 32))
    q = Tensor("q", ("h", "p", "e"), (4, 8, 16), role=TensorRole.INPUT)
    e = Einsum("qk", Operand(s, ("h", "p", "m")), (Operand(q, ("h", "p", "e")), Operand(kt, ("h", "e", "m"))),
               {"h": 4, "p": 8, "e": 16, "m": 32})
    g = e.as_gemm()
    assert (g.batch, g.m, g.k, g.n) == (4, 8, 16, 32)


def test_graph_orders_and_validates():
    a = gemm("a", 4, 4, 4, out="t1")
    t1 = a.output.tensor
    w = Tensor("w2", ("k", "n"), (4, 4), role=TensorRole.WEIGHT)
    t2 = Tensor("t2", ("m", "n"), (4, 4))
    b = Einsum("b", Operand(t2, ("m", "n")), (Operand(t1, ("m", "k")), Operand(w, ("k", "n"))),
               {"m": 4, "k": 4, "n": 4})
    g = Graph("chain", [b, a])
    assert [e.name for e in g.topological_order()] == ["a", "b"]
    assert {t.name for t in g.outputs} == {"t2"}
    assert g.compulsory_bytes == sum(t.bytes for t in g.inputs) + t2.bytes


def test_cycle_and_missing_producer_are_errors():
    x = Tensor("x", ("i",), (4,))
    y = Tensor("y", ("i",), (4,))
    e1 = Einsum("e1", Operand(y, ("i",)), (Operand(x, ("i",)),), {"i": 4}, OpKind.EXP)
    with pytest.raises(AccelsimError, match="no producer"):
        Graph("g", [e1])
    e2 = Einsum("e2", Operand(x, ("i",)), (Operand(y, ("i",)),), {"i": 4}, OpKind.EXP)
    with pytest.raises(AccelsimError, match="cycle"):
        Graph("g", [e1, e2])


@pytest.mark.parametrize("bad", [0, -3])
def test_nonpositive_sizes_are_rejected(bad):
    with pytest.raises(AccelsimError, match="positive"):
        gemm("g", bad, 4, 4)
    with pytest.raises(AccelsimError, match="positive"):
        Tensor("t", ("i",), (bad,))


def test_extent_mismatch_names_the_operand():
    t = Tensor("t", ("i",), (5,))
    o = Tensor("o", ("i",), (4,))
    with pytest.raises(AccelsimError, match="operand t"):
        Einsum("e", Operand(o, ("i",)), (Operand(t, ("i",)),), {"i": 4}, OpKind.EXP)
    assert math.isfinite(gemm("g", 2, 2, 2).arithmetic_intensity)


def test_unused_extent_and_fractional_shape_are_rejected():
    a = Tensor("a", ("i",), (4,), role=TensorRole.INPUT)
    o = Tensor("o", ("i",), (4,))
    with pytest.raises(AccelsimError, match="appear in no operand"):
        Einsum("e", Operand(o, ("i",)), (Operand(a, ("i",)),), {"i": 4, "z": 1000}, OpKind.EXP)
    with pytest.raises(AccelsimError, match="integers"):
        Tensor("t", ("i",), (2.5,))


def test_a_tensor_read_twice_is_one_compulsory_load():
    x = Tensor("x", ("i",), (10,), dtype_bytes=2, role=TensorRole.INPUT)
    y = Tensor("y", ("i",), (10,), dtype_bytes=2)
    square = Einsum("sq", Operand(y, ("i",)), (Operand(x, ("i",)), Operand(x, ("i",))), {"i": 10}, OpKind.MUL)
    assert square.bytes == 40
