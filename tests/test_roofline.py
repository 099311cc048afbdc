"""Roofline engine: bounds per Einsum, decode bytes decomposition, prefill compute bound."""
from __future__ import annotations

import json
import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.roofline import einsum_cost, roofline
from accelsim.hardware import load_hardware
from accelsim.ir import Graph, gemm
from workloads.models import load_model
from workloads.transformer import build_model
from tests.cli_helper import cli_in_process


@given(m=st.integers(1, 4096), k=st.integers(1, 8192), n=st.integers(1, 8192))
@settings(max_examples=50, deadline=None)
def test_gemm_time_is_max_of_compute_and_memory(m, k, n):
    dev = load_hardware("a100-80gb")
    e = gemm("g", m, k, n, dtype_bytes=2)
    c = einsum_cost(e, dev)
    compute = 2 * m * k * n / 312e12
    memory = 2 * (m * k + k * n + m * n) / 2.039e12
    assert c["time_s"] == pytest.approx(max(compute, memory))
    assert c["bound"] == ("compute" if compute > memory else "memory")


def test_efficiency_factors_scale_time():
    from accelsim.hardware.gpu import GPU

    base = load_hardware("h100-sxm")
    slow = GPU.model_validate(base.model_dump() | {"compute_efficiency": 0.5, "memory_efficiency": 0.8})
    g = Graph("g", [gemm("big", 4096, 4096, 4096)])
    assert roofline(g, slow).totals["total_s"] == pytest.approx(2 * roofline(g, base).totals["total_s"])


def test_decode_batch1_is_memory_bound_and_bytes_are_weights_plus_kv():
    """Llama-2-7B decode, batch 1, context 2048 on A100.

    bytes = weights read (every weight once, except the embedding table of which only the one
    looked-up row is read) + KV cache read (2 x 32 layers x 2049 rows x 4096 x 2 B) + KV cache
    written (the new token's row) + activations (every intermediate tensor written and read
    once, unfused). Activations must be a small remainder (< 0.5 %).
    """
    cfg = load_model("llama-2-7b")
    rep = roofline(build_model(cfg, "decode", batch=1, context=2048), "a100-80gb")
    t = rep.totals
    assert t["bound"] == "memory"
    assert t["memory_bound_s"] / t["total_s"] > 0.99
    d, L, V = 4096, 32, 32000
    params = 6_738_415_616  # Llama-2-7b-hf, transformers num_parameters()
    weights_read = (params - V * d + d) * 2
    kv_read = 2 * L * 2049 * d * 2
    kv_write = 2 * L * 1 * d * 2
    assert t["bytes_by_role"]["weight"] == pytest.approx(weights_read)
    assert t["bytes_by_role"]["kv_cache"] == pytest.approx(kv_read + kv_write)
    rest = t["bytes"] - weights_read - kv_read - kv_write
    assert 0 < rest < 0.005 * t["bytes"]
    # and the time is those bytes over the datasheet bandwidth, within the vector-op remainder
    assert t["total_s"] == pytest.approx(t["bytes"] / 2.039e12, rel=0.01)


def test_decode_bytes_grow_with_batch_then_saturate_for_moe():
    cfg = load_model("mixtral-8x7b")
    batches = (1, 2, 4, 8, 16, 32, 128)
    weights = [roofline(build_model(cfg, "decode", batch=b, context=512), "h100-sxm").totals["bytes_by_role"]["weight"]
               for b in batches]
    assert all(a < b for a, b in zip(weights, weights[1:]))
    # saturated: every weight read once, of the embedding table only the looked-up rows
    model = build_model(cfg, "decode", batch=128, context=512)
    table = 32000 * 4096 * 2
    assert weights[-1] == pytest.approx(model.weight_bytes() - table + 128 * 4096 * 2, rel=1e-9)
    assert weights[0] < 0.3 * weights[-1]


def test_long_prefill_is_compute_bound():
    cfg = load_model("llama-2-7b")
    rep = roofline(build_model(cfg, "prefill", batch=1, seq=4096), "a100-80gb")
    assert rep.totals["bound"] == "compute"
    assert rep.totals["compute_bound_s"] > 0.8 * rep.totals["total_s"]


def test_tp_allreduce_is_costed_on_the_link():
    cfg = load_model("llama-2-7b")
    rep = roofline(build_model(cfg, "prefill", batch=8, seq=512, tp=2), "a100-80gb")
    rows = [r for r in rep.layers if r["kind"] == "allreduce"]
    assert rows and all(r["bound"] == "communication" for r in rows)
    size = 8 * 512 * 4096 * 2
    assert rows[0]["comm_s"] == pytest.approx(rows[0]["count"] * size / 300e9)


def run_cli(*args):
    """In-process CLI run (the subprocess contract is covered by tests/test_cli_basics.py)."""
    return cli_in_process(*args)


def test_cli_json_fields():
    done = run_cli("roofline", "--model", "llama-2-7b", "--device", "h100-sxm", "--phase", "decode", "--batch", "4",
                   "--context", "1024", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {"total_s", "flops", "bytes", "operators"} <= set(doc)
    op = doc["operators"][0]
    assert {"name", "flops", "bytes", "time_s", "bound"} <= set(op)
    assert doc["total_s"] == pytest.approx(sum(o["time_s"] for o in doc["operators"]))


@pytest.mark.parametrize("args, needle", [
    (("roofline", "--model", "no-such", "--device", "a100-80gb"), "llama-2-7b"),
    (("roofline", "--model", "gpt2", "--device", "no-such"), "h100-sxm"),
    (("roofline", "--model", "gpt2", "--device", "tpu-v1"), "gpu"),
    (("roofline", "--model", "gpt2", "--device", "t4", "--batch", "0"), "batch"),
    (("roofline", "--model", "gpt2", "--device", "t4", "--phase", "train"), "phase"),
    (("roofline", "--model", "bert-base", "--device", "t4", "--phase", "decode"), "phase"),
    (("workloads", "show", "no-such"), "mixtral-8x7b"),
])
def test_cli_bad_input_one_line_exit_2(args, needle):
    done = run_cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("patch, field", [
    ("hidden_size: 4100", "num_heads"),
    ("num_kv_heads: 5", "num_kv_heads"),
])
def test_cli_bad_config_file_names_field(tmp_path, patch, field):
    text = (load_model.__globals__["zoo_paths"]()["llama-3-8b"]).read_text()
    key = patch.split(":")[0]
    lines = [patch if line.startswith(key + ":") else line for line in text.splitlines()]
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(lines))
    done = run_cli("roofline", "--model", str(path), "--device", "a100-80gb")
    assert done.returncode == 2
    assert field in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_bad_moe_top_k(tmp_path):
    text = (load_model.__globals__["zoo_paths"]()["mixtral-8x7b"]).read_text().replace("top_k: 2", "top_k: 9")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = run_cli("roofline", "--model", str(path), "--device", "a100-80gb")
    assert done.returncode == 2 and "top_k" in done.stderr


def test_resident_bytes_are_weights_plus_kv_cache():
    cfg = load_model("llama-2-7b")
    rep = roofline(build_model(cfg, "decode", batch=4, context=1023), "t4")
    weights = 6_738_415_616 * 2
    kv = 2 * 32 * 4 * (1024 + 1) * 4096 * 2  # cache of context+1 rows read, plus the row written
    assert rep.totals["resident_bytes"] == pytest.approx(weights + kv)
    assert rep.totals["fits_memory"] is True
    big = roofline(build_model(load_model("llama-2-13b"), "decode", batch=1, context=8), "t4")
    assert big.totals["fits_memory"] is False


def test_cli_costs_an_onnx_file(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((64, 3, 7, 7), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[3, 3, 3, 3])], "stem",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 112, 112])], [w])
    path = tmp_path / "stem.onnx"
    onnx.save(helper.make_model(graph), str(path))
    done = run_cli("roofline", "--model", str(path), "--device", "t4", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["flops"] == 2 * 64 * 112 * 112 * 3 * 7 * 7  # ResNet stem conv, 2 FLOPs per MAC


def test_gpu_spec_errors_name_the_field(tmp_path):
    from accelsim.errors import AccelsimError

    bad = tmp_path / "gpu.yaml"
    bad.write_text("kind: gpu\nname: x\npeak_flops_per_s: {fp16: 1.0e12}\nvector_flops_per_s: 1.0e11\n"
                   "memory: {name: hbm, capacity_bytes: 1000}\n")
    with pytest.raises(AccelsimError, match="bandwidth"):
        load_hardware(str(bad))
    with pytest.raises(AccelsimError, match="dtype"):
        load_hardware("t4").matrix_flops_per_s("fp8")


# Datasheet memory capacity per preset, in the vendor's "GB", which for HBM/GDDR capacity is
# binary (accelsim/hardware/gpu.py): A100 80GB, H100 SXM 80GB, H200 141GB, T4 16GB datasheets.
DATASHEET_GB = {"a100-80gb": 80, "h100-sxm": 80, "h200": 141, "t4": 16}


@pytest.mark.parametrize("name, gb", sorted(DATASHEET_GB.items()))
def test_gpu_capacity_is_datasheet_gib(name, gb):
    assert load_hardware(name).memory.capacity_bytes == gb * 2**30


def test_h200_capacity_holds_what_nvidia_smi_reports():
    # nvidia-smi on an H200 SXM reports 143771 MiB total (public logs): a decimal 141e9 B could not hold it
    assert load_hardware("h200").memory.capacity_bytes >= 143771 * 2**20 > 141e9


def test_cli_capacity_note_is_in_gib():
    done = run_cli("roofline", "--model", "llama-2-13b", "--device", "t4")
    assert done.returncode == 0
    assert "16.00 GiB" in done.stdout  # the T4's 16 GB datasheet capacity


def test_one_byte_model_on_device_without_fp8_records_the_substitution():
    cfg = load_model("llama-2-7b").model_copy(update={"dtype_bytes": 1})
    a100 = roofline(build_model(cfg, "decode", batch=1, context=16), "a100-80gb")  # no fp8 on Ampere
    assert "int8" in a100.meta["dtype_substitutions"]["1-byte"]
    h100 = roofline(build_model(cfg, "decode", batch=1, context=16), "h100-sxm")
    assert h100.meta["dtype_substitutions"] == {}
    done = run_cli("roofline", "--model", "llama-2-7b", "--device", "a100-80gb", "--json")
    assert json.loads(done.stdout)["dtype_substitutions"] == {}  # 2-byte model: fp16 is the preferred peak


EMBEDDING_HEAVY = dict(name="wide-vocab", hidden_size=64, num_layers=1, num_heads=4, ffn_size=128,
                       vocab_size=100_000, tie_embeddings=True, position="rope")


@pytest.mark.parametrize("model", ["gpt2", "wide-vocab"])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_tied_embedding_resident_weights_never_exceed_parameters(model, tp):
    # Tied input/output embedding (GPT-2's parameter_count is checked against the published
    # 124,439,808 in test_zoo): one device never holds more than all parameters, at tp=1 exactly them.
    # The wide-vocabulary model is almost all embedding, so counting the LM head's vocabulary shard
    # on top of the (unsharded) table would break the bound.
    from workloads.config import config_from_dict
    from workloads.transformer import parameter_count

    cfg = load_model("gpt2") if model == "gpt2" else config_from_dict(EMBEDDING_HEAVY)
    rep = roofline(build_model(cfg, "decode", batch=1, context=8, tp=tp), "t4")
    params_bytes = parameter_count(cfg) * cfg.dtype_bytes
    assert rep.totals["resident_weight_bytes"] <= params_bytes
    if tp == 1:
        assert rep.totals["resident_weight_bytes"] == params_bytes


def test_cli_costs_a_cnn_network_by_name_as_the_roofline_of_its_graph():
    import json as _json

    from accelsim.engines.roofline import roofline as _roofline
    from accelsim.hardware import load_hardware
    from workloads.cnn import build_network

    done = cli_in_process("roofline", "--model", "resnet50", "--hardware", "a100-80gb", "--json")
    assert done.returncode == 0, done.stderr
    doc = _json.loads(done.stdout)
    direct = _roofline(build_network("resnet50"), load_hardware("a100-80gb", kind="gpu")).totals
    assert doc["phase"] == "network" and doc["total_s"] == direct["total_s"] and doc["flops"] == direct["flops"]


@pytest.mark.parametrize("command", ["roofline", "simulate"])
@pytest.mark.parametrize("option", [("--seq", "64"), ("--context", "64"), ("--batch", "4"), ("--tp", "2")])
def test_size_options_are_refused_for_a_network_costed_as_built(command, option):
    from tests.cli_helper import one_line_error

    done = cli_in_process(command, "--model", "resnet50", "--hardware", "a100-80gb", *option)
    one_line_error(done, option[0], "resnet50")
