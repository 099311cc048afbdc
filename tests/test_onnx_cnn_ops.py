"""ONNX pooling, normalisation, Concat and dynamic dimensions (issue 14 section 5).

Each imported Graph is evaluated by ``workloads.executor`` (a NORM Einsum by the ONNX formula
applied to its operands as indexed) and compared with ``onnx.reference.ReferenceEvaluator`` on
the original model: if an index, a padding value or a divisor is wrong, the arrays differ.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from accelsim.errors import AccelsimError
from accelsim.ir import AffineIndex, OpKind
from workloads.executor import evaluate_einsum
from workloads.importers.onnx_graph import graph_from_onnx

rng = np.random.default_rng(1)


def _gathered(e, operand, arrays):
    """An operand's values over the Einsum's whole iteration space (brute force, reads outside are 0)."""
    ranks = list(e.extents)
    out = np.zeros(tuple(e.extents[r] for r in ranks))
    for point in itertools.product(*(range(e.extents[r]) for r in ranks)):
        at = dict(zip(ranks, point))
        idx = tuple(a.offset + sum(c * at[r] for r, c in a.coefs) for a in map(AffineIndex.parse, operand.index))
        if all(0 <= i < s for i, s in zip(idx, operand.tensor.shape)):
            out[point] = arrays[operand.tensor.name][idx]
    return out


def _norm(e, arrays):
    x, *params = (_gathered(e, o, arrays) for o in e.inputs)
    eps = e.attrs["epsilon"]
    if e.attrs["kind"] == "batchnorm":
        scale, bias, mean, var = params
        return (x - mean) / np.sqrt(var + eps) * scale + bias
    axes = tuple(list(e.extents).index(r) for r in e.attrs["normalized_ranks"])
    mu = x.mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps) * params[0]
    return y + params[1] if len(params) > 1 else y


def run_imported(graph, values):
    arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    for e in graph.topological_order():
        arrays[e.output.tensor.name] = _norm(e, arrays) if e.op is OpKind.NORM else evaluate_einsum(e, arrays)
    return arrays


def check(nodes, inputs, weights, out_name, out_shape, extra=None):
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    vi_in = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()]
    vi_out = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))]
    model = helper.make_model(helper.make_graph(nodes, "t", vi_in, vi_out, inits))
    want = ReferenceEvaluator(model).run(None, {k: v.astype(np.float32) for k, v in inputs.items()})[0]
    graph = graph_from_onnx(model)
    got = run_imported(graph, {**inputs, **weights, **(extra(graph) if extra else {})})[out_name]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return graph


@pytest.mark.parametrize("kernel, stride, pad, dil, ceil", [(2, 2, 0, 1, 0), (3, 1, 1, 1, 0), (3, 2, 1, 2, 0),
                                                             (2, 2, 0, 1, 1)])
def test_maxpool_matches_onnx(kernel, stride, pad, dil, ceil):
    x = -np.abs(rng.standard_normal((1, 2, 7, 6)))  # all negative: a zero from padding would win the max
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4,
                            dilations=[dil] * 2, ceil_mode=ceil)
    out = ReferenceEvaluator(helper.make_model(helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]))).run(None, {"x": x.astype(np.float32)})[0]
    check([node], {"x": x}, {}, "y", out.shape)


def _window_counts(size, kernel, stride, pad, out):
    """In-range positions of each window along one axis (brute force)."""
    return np.array([sum(0 <= o * stride + r - pad < size for r in range(kernel)) for o in range(out)], dtype=float)


@pytest.mark.parametrize("pad, include", [(0, 0), (1, 1), (1, 0)])
def test_average_pool_matches_onnx(pad, include):
    x = rng.standard_normal((1, 3, 6, 5))
    k, s = 3, 2
    ho, wo = (6 + 2 * pad - k) // s + 1, (5 + 2 * pad - k) // s + 1
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4,
                            count_include_pad=include)

    def divisor(graph):
        t = next(t for t in graph.tensors.values() if t.name.endswith(".divisor"))
        if t.shape == (1,):
            return {t.name: np.array([k * k], dtype=float)}
        return {t.name: np.outer(_window_counts(6, k, s, pad, ho), _window_counts(5, k, s, pad, wo))}

    check([node], {"x": x}, {}, "y", (1, 3, ho, wo), extra=divisor)


def test_global_average_pool_batchnorm_layernorm_concat_match_onnx():
    x = rng.standard_normal((2, 3, 4, 5))
    c = 3
    bn = dict(scale=rng.standard_normal(c), bias=rng.standard_normal(c), mean=rng.standard_normal(c),
              var=rng.random(c) + 0.5)
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["b"], epsilon=1e-3),
             helper.make_node("GlobalAveragePool", ["b"], ["g"])]
    graph = check(nodes, {"x": x}, bn, "g", (2, 3, 1, 1),  # divisor: the 4 x 5 spatial positions
                  extra=lambda g: {n: np.array([20.0]) for n in g.tensors if n.endswith(".divisor")})
    assert {e.attrs.get("onnx_op") for e in graph.einsums} == {"BatchNormalization", "GlobalAveragePool"}
    gamma, beta = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    check([helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-2, epsilon=1e-5)],
          {"x": x}, {"gamma": gamma, "beta": beta}, "y", x.shape)
    a, b2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 2, 4))
    w = rng.standard_normal((2, 1, 4))
    cat = check([helper.make_node("Concat", ["a", "b", "w"], ["y"], axis=1)], {"a": a, "b": b2}, {"w": w}, "y",
                (2, 6, 4))
    (e,) = cat.einsums
    from accelsim.engines.roofline import einsum_flops, einsum_traffic

    assert einsum_flops(e) == 0  # a concat moves data and computes nothing
    assert einsum_traffic(e)["y"] == a.size * 4 + b2.size * 4 + w.size * 4


def test_transpose_flatten_reshape_chain_matches_onnx():
    x = rng.standard_normal((2, 3, 4))
    shape = numpy_helper.from_array(np.array([6, 4], dtype=np.int64), "shape")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
             helper.make_node("Flatten", ["t"], ["f"], axis=2),
             helper.make_node("Reshape", ["f", "shape"], ["y"])]
    vi_in = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])]
    vi_out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 4])]
    model = helper.make_model(helper.make_graph(nodes, "t", vi_in, vi_out, [shape]))
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    from tests.test_onnx_semantics import evaluate  # brute force: handles affine output indices

    got = evaluate(graph_from_onnx(model), {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _dynamic_model():
    w = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 16])
    return helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "dyn", [x], [y], [w]))


def test_dynamic_dimensions_take_the_given_values():
    model = _dynamic_model()
    g = graph_from_onnx(model, dims={"batch": 4, "seq": 32})
    assert g.einsums[0].macs == 4 * 32 * 8 * 16
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # the caller's model unchanged
    for dims, needle in (({}, "batch=N"), ({"batch": 4}, "seq"), ({"batch": 4, "seq": 2, "beam": 3}, "beam"),
                         ({"batch": 0, "seq": 2}, "positive")):
        with pytest.raises(AccelsimError, match=needle):
            graph_from_onnx(model, dims=dims)


def test_cli_dim_option(tmp_path):
    import onnx

    from tests.cli_helper import cli_in_process

    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic_model(), str(path))
    done = cli_in_process("roofline", "--model", str(path), "--device", "a100-80gb", "--dim", "batch=4", "--dim",
                          "seq=32", "--json")
    assert done.returncode == 0, done.stderr
    import json

    assert json.loads(done.stdout)["flops"] == 2 * 4 * 32 * 8 * 16
    done = cli_in_process("roofline", "--model", str(path), "--device", "a100-80gb")
    assert done.returncode == 2 and "--dim" in done.stderr and "batch=N" in done.stderr
    done = cli_in_process("roofline", "--model", "gpt2", "--device", "a100-80gb", "--dim", "batch=4")
    assert done.returncode == 2 and "--dim" in done.stderr


def test_extra_outputs_are_refused_not_dropped():
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])
    model = helper.make_model(helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])]))
    with pytest.raises(AccelsimError, match="more than one output"):
        graph_from_onnx(model)
