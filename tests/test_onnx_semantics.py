"""The ONNX importer's Einsums compute what ONNX computes.

A brute-force Einsum evaluator (every point of the iteration space, affine indices, reads outside
a tensor are zero padding) runs the imported Graph; onnx.reference.ReferenceEvaluator runs the
original model. Tiny shapes, random inputs, exact agreement to float tolerance.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from accelsim.ir import AffineIndex, Graph, OpKind
from workloads.importers.onnx_graph import graph_from_onnx

POINTWISE = {OpKind.ADD: np.add, OpKind.SUB: np.subtract, OpKind.MUL: np.multiply, OpKind.DIV: np.divide,
             OpKind.MAX: np.maximum}


def evaluate(graph: Graph, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    env = dict(values)
    for e in graph.topological_order():
        ranks = list(e.extents)
        out = np.zeros(e.output.tensor.shape)
        for point in itertools.product(*(range(e.extents[r]) for r in ranks)):
            at = dict(zip(ranks, point))

            def index(operand):
                idx = tuple(a.offset + sum(c * at[r] for r, c in a.coefs) for a in map(AffineIndex.parse, operand.index))
                inside = all(0 <= i < s for i, s in zip(idx, operand.tensor.shape))
                return idx, inside

            o_idx, _ = index(e.output)
            vals = []
            for operand in e.inputs:
                idx, inside = index(operand)
                vals.append(env[operand.tensor.name][idx] if inside else 0.0)
            if e.op is OpKind.MAC:
                out[o_idx] += np.prod(vals)
            elif e.op in POINTWISE:
                out[o_idx] = POINTWISE[e.op](*vals)
            elif e.op is OpKind.ACTIVATION and e.attrs.get("kind") == "relu":
                out[o_idx] = max(vals[0], 0.0)
            elif e.op is OpKind.COPY:
                out[o_idx] = vals[0]
            else:
                raise NotImplementedError(e.op)
        env[e.output.tensor.name] = out
    return env


def check(nodes, inputs: dict[str, np.ndarray], weights: dict[str, np.ndarray], out_name: str, out_shape):
    rng_inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    vi_in = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()]
    vi_out = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))]
    model = helper.make_model(helper.make_graph(nodes, "t", vi_in, vi_out, rng_inits))
    want = ReferenceEvaluator(model).run(None, {k: v.astype(np.float32) for k, v in inputs.items()})[0]
    got = evaluate(graph_from_onnx(model), {**inputs, **weights})[out_name]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


rng = np.random.default_rng(0)


@pytest.mark.parametrize("stride, pad, dil, group", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2)])
def test_conv_matches_onnx(stride, pad, dil, group):
    x = rng.standard_normal((1, 4, 7, 6))
    w = rng.standard_normal((6, 4 // group, 3, 3))
    b = rng.standard_normal(6)
    h = (7 + 2 * pad - dil * 2 - 1) // stride + 1
    wo = (6 + 2 * pad - dil * 2 - 1) // stride + 1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride] * 2, pads=[pad] * 4,
                            dilations=[dil] * 2, group=group)
    check([node], {"x": x}, {"w": w, "b": b}, "y", (1, 6, h, wo))


def test_matmul_broadcast_gemm_relu_transpose_reshape_match_onnx():
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((4, 5))
    g = rng.standard_normal((6, 15))
    c = rng.standard_normal(6)
    shape = np.array([2, 15])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Reshape", ["t", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "g", "c"], ["y"], transB=1)]
    weights = {"w": w, "g": g, "c": c}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    inits.append(numpy_helper.from_array(shape.astype(np.int64), "shape"))
    vi_in = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])]
    vi_out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])]
    model = helper.make_model(helper.make_graph(nodes, "t", vi_in, vi_out, inits))
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    got = evaluate(graph_from_onnx(model), {"x": x, **weights, "shape": shape})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_batched_matmul_with_broadcast_batch_and_elementwise():
    a = rng.standard_normal((2, 1, 3, 4))
    b = rng.standard_normal((3, 4, 2))
    s = rng.standard_normal((1, 2))
    nodes = [helper.make_node("MatMul", ["a", "b"], ["m"]), helper.make_node("Sub", ["m", "s"], ["y"])]
    check(nodes, {"a": a}, {"b": b, "s": s}, "y", (2, 3, 3, 2))
