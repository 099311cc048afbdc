"""The A100 check set (tests/data/a100_measured) and the graphs that predict it (benchmarks/a100_layer.py).

Independent checks: the stored tables have the row counts and the shape sweeps of the LLMCompass
scripts that produced them; the layer graphs have the closed-form FLOPs of a GPT-3 layer under
4-way tensor parallelism; a layer's predicted time is the sum of its operators' standalone
predictions (nothing is fused or double counted) and the rows partition its einsums; softmax and
layer norm never beat HBM bandwidth; an all-reduce costs the ring bytes over the NVLink figure.
"""
from __future__ import annotations

import dataclasses

import pytest

from accelsim.engines.registry import engine_for
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import Einsum, Graph, Operand, OpKind, TensorRole
from accelsim.simulate import simulate
from benchmarks import a100_layer as layer

A100 = load_hardware("a100-cores")
HBM_BYTES_PER_S = 2.039e12  # A100 80GB datasheet
NVLINK_BYTES_PER_S = 300e9  # A100 whitepaper: 12 links x 25 GB/s per direction

# Rows in the LLMCompass source files at commit b95c6c95 (counted there, not from our copies).
SOURCE_ROWS = {"softmax_A100.csv": 22, "layernorm_A100.csv": 22, "transformer_A100.csv": 12,
               "transformerAR_A100.csv": 12}


@pytest.mark.parametrize("name", sorted(SOURCE_ROWS))
def test_stored_tables_have_the_source_row_counts(name):
    lines = [ln for ln in (layer.MEASURED_DIR / name).read_text().splitlines() if ln.strip()]
    assert len(lines) == SOURCE_ROWS[name]


@pytest.mark.parametrize("name", ["softmax_A100.csv", "layernorm_A100.csv"])
def test_rowwise_tables_follow_the_script_sweep(name):
    # test_softmax.py / test_layernorm.py: M = 4096 with N = 2^5..2^15, then N = 4096 with M = 2^5..2^15
    rows = layer.load_rowwise(name)
    expected = [(4096, 2**i) for i in range(5, 16)] + [(2**i, 4096) for i in range(5, 16)]
    assert [(r["m"], r["n"]) for r in rows] == expected
    assert all(0 < r["measured_s"] < 0.01 for r in rows)  # a single [M, N] pass: microseconds to milliseconds


def test_allreduce_table_is_the_32_doubling_sizes():
    rows = layer.load_allreduce_node()
    assert [r["bytes"] for r in rows] == [8 * 2**i for i in range(32)]
    times = [r["measured_s"] for r in rows]
    assert times[-1] > 100 * times[0]  # 16 GiB is bandwidth bound, 8 B is latency bound


def test_layer_tables_load_in_category_order():
    for phase in ("prefill", "decode"):
        measured = layer.load_layer(phase)
        assert list(measured) == list(layer.LAYER_ROWS)
        assert measured["LayerNorm_MHA"] == measured["LayerNorm_FFN"]  # one measurement counted twice
    with pytest.raises(AccelsimError, match="phase"):
        layer.layer_graph("train")


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_layer_graph_has_the_closed_form_flops(phase):
    b, d, h, e = 8, 12288, 96 // 4, 128
    s, keys = (2048, 2048) if phase == "prefill" else (1, 3073)
    projections = 2 * b * s * (3 * d * d // 4 + d // 4 * d + 2 * d * d)  # q, k, v, o; up and down (4d/4 = d)
    attention = 2 * 2 * b * h * s * keys * e  # Q K^T and P V
    macs = sum(2 * x.macs for x in layer.layer_graph(phase).einsums if x.op is OpKind.MAC)
    assert macs == projections + attention


def _standalone(e: Einsum) -> Graph:
    """``e`` alone: its inputs become graph inputs (same shapes and bytes)."""
    ins = tuple(Operand(dataclasses.replace(o.tensor, role=TensorRole.INPUT), o.index)
                if o.tensor.role is TensorRole.ACTIVATION else o for o in e.inputs)
    return Graph(e.name, [dataclasses.replace(e, inputs=ins)])


def test_decode_layer_is_the_sum_of_its_operators_and_rows_partition_it():
    graph = layer.layer_graph("decode")
    report = simulate(graph, "a100-cores", time_limit_s=2)
    alone = sum(simulate(_standalone(e), "a100-cores", time_limit_s=2).core.total_s for e in graph.einsums)
    assert report.core.total_s == pytest.approx(alone, rel=1e-9)
    covered = [n for names in layer.LAYER_ROWS.values() for n in names]
    assert sorted(covered) == sorted(e.name for e in graph.einsums)  # every einsum in exactly one row
    rows = layer.row_predictions(report.layers, A100.launch_overhead_s)
    subtracted = len(layer.LAUNCH_SUBTRACTED) * A100.launch_overhead_s
    assert sum(rows.values()) == pytest.approx(report.core.total_s - subtracted, rel=1e-9)


def test_layer_allreduce_costs_the_ring_bytes_over_nvlink():
    report = simulate(layer.layer_graph("decode"), "a100-cores", time_limit_s=2)
    ar = next(r for r in report.layers if r["name"] == "allreduce_ffn")
    buffer_bytes = 8 * 1 * 12288 * 2
    ring = 2 * 3 / 4 * buffer_bytes
    assert ar["total_s"] == pytest.approx(max(ring / NVLINK_BYTES_PER_S, 2 * buffer_bytes / HBM_BYTES_PER_S)
                                          + A100.launch_overhead_s)


@pytest.mark.parametrize("nbytes", [8, 1 << 20, 1 << 30])
def test_allreduce_is_never_faster_than_the_link(nbytes):
    t = simulate(layer.allreduce_graph(nbytes), "a100-cores").core.total_s
    assert t >= 1.5 * nbytes / NVLINK_BYTES_PER_S + A100.launch_overhead_s


def test_an_allreduce_without_its_byte_count_is_refused():
    g = layer.allreduce_graph(1024)
    e = g.einsums[0]
    bare = Graph("bare", [dataclasses.replace(e, attrs={"kind": "allreduce"})])
    problems = engine_for("multicore").check(bare, A100, None)
    assert problems and "collective_bytes" in problems[0].detail


@pytest.mark.parametrize("graph_of, name", [(layer.softmax_graph, "softmax_A100.csv"),
                                            (layer.layernorm_graph, "layernorm_A100.csv")])
def test_softmax_and_layernorm_never_beat_hbm(graph_of, name):
    for r in layer.load_rowwise(name):
        t = simulate(graph_of(r["m"], r["n"]), "a100-cores").core.total_s
        assert t >= 2 * r["m"] * r["n"] * 2 / HBM_BYTES_PER_S  # read once, write once, fp16


def test_a_tensor_parallel_zoo_model_runs_on_a100_cores_with_its_allreduces():
    from workloads.models import load_model
    from workloads.transformer import build_model

    model = build_model(load_model("gpt2"), "decode", batch=1, context=128, tp=2)
    report = simulate(model, "a100-cores", time_limit_s=1)
    links = [r for r in report.layers if r["unit"] == "link"]
    assert len(links) == 2  # attention and FFN all-reduce of the (repeated) block
    for r in links:
        buffer_bytes = 1 * 1 * 768 * 2  # [b, s, d] fp16
        assert r["link_bytes"] == pytest.approx(2 * (2 - 1) / 2 * buffer_bytes)
        assert r["total_s"] >= r["link_bytes"] / NVLINK_BYTES_PER_S + A100.launch_overhead_s
    assert report.core.total_s == pytest.approx(sum(r["total_s"] * r["repeat"] for r in report.layers), rel=1e-9)
