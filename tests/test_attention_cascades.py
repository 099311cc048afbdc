"""Each attention cascade computes softmax(QK^T)V: checked against plain numpy on random inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from accelsim.errors import AccelsimError
from accelsim.ir import gemm
from accelsim.ir import Graph
from workloads.attention import AttentionShape, cascade
from workloads.executor import execute


def reference(q, k, v):
    # q[b,h,e,p], k[b,h,e,m], v[b,h,f,m] -> av[b,h,f,p]
    s = np.einsum("bhep,bhem->bhpm", q, k)
    s = s - s.max(axis=-1, keepdims=True)
    w = np.exp(s)
    w /= w.sum(axis=-1, keepdims=True)
    return np.einsum("bhpm,bhfm->bhfp", w, v)


shapes = st.builds(AttentionShape, b=st.integers(1, 2), h=st.integers(1, 2), m=st.integers(1, 13),
                   p=st.integers(1, 5), e=st.integers(1, 4), f=st.integers(1, 4))


@settings(max_examples=25, deadline=None)
@given(shape=shapes, kind=st.sampled_from(["3pass", "2pass", "1pass"]), m0=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 8.0]))
def test_cascade_equals_softmax_attention(shape, kind, m0, seed, scale):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(shape.b, shape.h, shape.e, shape.p)) * scale
    k = rng.normal(size=(shape.b, shape.h, shape.e, shape.m))
    v = rng.normal(size=(shape.b, shape.h, shape.f, shape.m))
    out = execute(cascade(kind, shape, m0=m0), {"Q": q, "K": k, "V": v})["AV"]
    np.testing.assert_allclose(out, reference(q, k, v), rtol=1e-5, atol=1e-5)


def test_partial_last_tile_is_exercised():
    # M = 10 with M0 = 4: three tiles, the last holds 2 real keys and 2 padded ones
    shape = AttentionShape(b=1, h=1, m=10, p=3, e=2, f=2)
    g = cascade("1pass", shape, m0=4)
    assert g.einsum("QK").extents["m1"] == 3
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(1, 1, 2, 3)), rng.normal(size=(1, 1, 2, 10)), rng.normal(size=(1, 1, 2, 10))
    arrays = execute(g, {"Q": q, "K": k, "V": v})
    assert np.isneginf(arrays["QK"][0, 0, 2, 2:, :]).all()
    np.testing.assert_allclose(arrays["AV"], reference(q, k, v), rtol=1e-6, atol=1e-9)


def test_executor_gemm_and_conv_semantics():
    rng = np.random.default_rng(1)
    e = gemm("g", 3, 4, 5)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    out = execute(Graph("g", [e]), {"g.A": a, "g.B": b})["g.out"]
    np.testing.assert_allclose(out, a @ b)
    from accelsim.ir import conv2d
    c = conv2d("c", ifmap_h=5, ifmap_w=5, channels=2, filters=3, filter_h=3, filter_w=3, padding=1)
    x, w = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    got = execute(Graph("c", [c]), {"c.ifmap": x, "c.weight": w})["c.ofmap"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((1, 3, 5, 5))
    for i in range(5):
        for j in range(5):
            want[0, :, i, j] = np.einsum("crs,kcrs->k", xp[0, :, i:i + 3, j:j + 3], w)
    np.testing.assert_allclose(got, want)


def test_missing_input_is_named():
    shape = AttentionShape(1, 1, 4, 2, 2, 2)
    with pytest.raises(AccelsimError, match="V"):
        execute(cascade("3pass", shape), {"Q": np.zeros((1, 1, 2, 2)), "K": np.zeros((1, 1, 2, 4))})
