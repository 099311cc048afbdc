"""Hugging Face config.json and ONNX importers."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelsim.errors import AccelsimError
from accelsim.ir import AffineIndex, OpKind, conv2d
from workloads.models import load_model
from workloads.importers.hf_config import config_from_hf
from workloads.importers.onnx_graph import graph_from_onnx
from workloads.transformer import parameter_count

LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "torch_dtype": "float16",
             "tie_word_embeddings": False}


def test_llama_config_json_gives_the_published_exact_count(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA2_7B))
    cfg = load_model(str(path))
    # transformers' LlamaForCausalLM(...).num_parameters() for Llama-2-7b-hf is 6,738,415,616
    assert parameter_count(cfg) == 6_738_415_616


@pytest.mark.parametrize("zoo, hf", [
    ("mixtral-8x7b", {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
                      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                      "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2}),
    ("qwen2-72b", {"model_type": "qwen2", "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                   "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 152064}),
    ("gpt2", {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
              "vocab_size": 50257}),
    ("bert-base", {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512}),
    ("deepseek-v3", {"model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61,
                     "num_attention_heads": 128, "intermediate_size": 18432, "vocab_size": 129280,
                     "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                     "v_head_dim": 128, "n_routed_experts": 256, "num_experts_per_tok": 8,
                     "moe_intermediate_size": 2048, "n_shared_experts": 1, "first_k_dense_replace": 3,
                     "topk_method": "noaux_tc", "scoring_func": "sigmoid"}),
])
def test_hf_families_match_zoo_counts(zoo, hf):
    assert parameter_count(config_from_hf(hf, "x")) == parameter_count(load_model(zoo))


def test_hf_unsupported_and_inconsistent():
    with pytest.raises(AccelsimError, match="model_type") as err:
        config_from_hf({"model_type": "mamba"}, "x")
    assert "llama" in str(err.value)
    with pytest.raises(AccelsimError, match="num_kv_heads"):
        config_from_hf(LLAMA2_7B | {"num_key_value_heads": 5}, "x")
    with pytest.raises(AccelsimError, match="intermediate_size"):
        config_from_hf({k: v for k, v in LLAMA2_7B.items() if k != "intermediate_size"}, "x")


def _model(nodes, inputs, outputs, inits):
    return helper.make_model(helper.make_graph(nodes, "t", inputs, outputs, inits))


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_onnx_mlp_flops_and_roles():
    w1 = numpy_helper.from_array(np.zeros((16, 32), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((10, 32), np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros((10,), np.float32), "b2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    g = graph_from_onnx(_model(nodes, [vi("x", [4, 16])], [vi("y", [4, 10])], [w1, w2, b2]))
    assert g.macs == 4 * 16 * 32 + 4 * 32 * 10
    assert {t.name for t in g.inputs if t.role.value == "weight"} == {"w1", "w2", "b2"}
    assert [e.op for e in g.topological_order()][-1] is OpKind.EXP


def test_onnx_conv_matches_ir_conv_builder():
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])
    g = graph_from_onnx(_model([node], [vi("x", [1, 3, 17, 17])], [vi("y", [1, 8, 9, 9])], [w]))
    ref = conv2d("c", ifmap_h=17, ifmap_w=17, channels=3, filters=8, filter_h=3, filter_w=3, stride=2, padding=1)
    assert g.macs == ref.macs


def test_onnx_grouped_conv():
    w = numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "w")  # depthwise, 8 groups
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=8, pads=[1, 1, 1, 1])
    g = graph_from_onnx(_model([node], [vi("x", [1, 8, 10, 10])], [vi("y", [1, 8, 10, 10])], [w]))
    assert g.macs == 8 * 10 * 10 * 9


@pytest.mark.parametrize("src, dst", [((2, 6, 4), (2, 24)), ((2, 24), (2, 6, 4)), ((3, 1, 4), (12,)),
                                      ((2, 3, 4), (6, 4, 1))])
def test_onnx_reshape_indices_move_every_element_to_its_row_major_place(src, dst):
    shape = numpy_helper.from_array(np.array(dst, np.int64), "shape")
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    e = graph_from_onnx(_model([node], [vi("x", list(src))], [vi("y", list(dst))], [shape])).einsums[0]
    ranks = list(e.extents)
    seen = set()
    for point in itertools.product(*(range(e.extents[r]) for r in ranks)):
        env = dict(zip(ranks, point))

        def flat(operand):
            idx = [AffineIndex.parse(i) for i in operand.index]
            vals = [a.offset + sum(c * env[r] for r, c in a.coefs) for a in idx]
            return int(np.ravel_multi_index(vals, operand.tensor.shape))
        assert flat(e.output) == flat(e.inputs[0])
        seen.add(flat(e.output))
    assert len(seen) == math.prod(src)


def test_onnx_unsupported_operators_are_all_named():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"), helper.make_node("LSTM", ["a"], ["b"], name="rnn"),
             helper.make_node("TopK", ["b"], ["y"], name="sel")]
    with pytest.raises(AccelsimError) as err:
        graph_from_onnx(_model(nodes, [vi("x", [2, 2])], [vi("y", [2, 2])], []))
    assert "rnn:LSTM" in str(err.value) and "sel:TopK" in str(err.value)


def test_onnx_file_roundtrip(tmp_path):
    import onnx

    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]), helper.make_node("Exp", ["t"], ["y"])]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [vi("x", [2, 3])], [vi("y", [3, 2])], []), str(path))
    g = graph_from_onnx(path)
    assert g.name == "m" and len(g) == 2
    with pytest.raises(AccelsimError, match="not found"):
        graph_from_onnx(tmp_path / "missing.onnx")


def _identity_model(elem_type: int):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", elem_type, [2, 3])],
                              [helper.make_tensor_value_info("y", elem_type, [2, 3])])
    return helper.make_model(graph)


@pytest.mark.parametrize("name", ["FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE", "INT8", "INT64", "BOOL", "COMPLEX64",
                                  "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ"])
def test_onnx_element_sizes_match_numpy(name):
    import ml_dtypes  # onnx's own dependency: the numpy types of its 16- and 8-bit floats

    elem = TensorProto.DataType.Value(name)
    # numpy's (or ml_dtypes') element size, not our table; onnx < 1.19 maps these floats to float32
    # storage in tensor_dtype_to_np_dtype, so the narrow floats are looked up in ml_dtypes directly
    narrow = {"BFLOAT16": ml_dtypes.bfloat16, "FLOAT8E4M3FN": ml_dtypes.float8_e4m3fn,
              "FLOAT8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz, "FLOAT8E5M2": ml_dtypes.float8_e5m2,
              "FLOAT8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz}
    expected = np.dtype(narrow[name]).itemsize if name in narrow else helper.tensor_dtype_to_np_dtype(elem).itemsize
    g = graph_from_onnx(_identity_model(elem))
    assert {t.dtype_bytes for t in g.inputs} == {expected}


@pytest.mark.parametrize("name", ["INT4", "UINT4", "FLOAT4E2M1", "STRING"])
def test_onnx_sub_byte_or_sizeless_types_are_named_not_guessed(name):
    with pytest.raises(AccelsimError, match=name) as err:
        graph_from_onnx(_identity_model(TensorProto.DataType.Value(name)))
    assert err.value.field == "onnx.elem_type"


def test_hf_unknown_torch_dtype_is_an_error_naming_it():
    with pytest.raises(AccelsimError, match="float128") as err:
        config_from_hf(dict(LLAMA2_7B, torch_dtype="float128"), name="x")
    assert err.value.field == "torch_dtype"


def test_hf_fp8_quantization_config_sets_one_byte_weights():
    # DeepSeek-V3's config.json: torch_dtype bfloat16 with quantization_config quant_method fp8 (e4m3,
    # 128x128 blocks): weights are 1 byte, the KV cache stays bf16 (2 bytes)
    quant = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}
    cfg = config_from_hf(dict(LLAMA2_7B, torch_dtype="bfloat16", quantization_config=quant), name="x")
    assert (cfg.dtype_bytes, cfg.kv_bytes) == (1, 2)
    with pytest.raises(AccelsimError, match="gptq") as err:
        config_from_hf(dict(LLAMA2_7B, quantization_config={"quant_method": "gptq", "bits": 4}), name="x")
    assert err.value.field == "quantization_config.quant_method"


def test_accelsim_model_config_as_json_loads(tmp_path):
    import yaml

    from workloads.config import ZOO_DIR

    data = yaml.safe_load((ZOO_DIR / "gpt2.yaml").read_text())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert load_model(str(path)) == load_model("gpt2")
    path.write_text(json.dumps({"foo": 1}))
    with pytest.raises(AccelsimError, match="model_type"):
        load_model(str(path))
