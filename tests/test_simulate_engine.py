"""The whole-model accelerator engine: the issue's checks, each against something independent."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.roofline import roofline
from accelsim.engines.systolic import simulate_gemm
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import Einsum, GemmShape, Graph, ModelGraph, Operand, OpKind, Part, Tensor, TensorRole, gemm
from accelsim.simulate import simulate
from tests.test_engine_conformance import compulsory_reads
from workloads.models import load_model
from workloads.transformer import build_model

CHIPS = ("tpu-v1", "tpu-v4", "edge-npu", "fusemax-cloud", "flat-edge")


def model(name="llama-2-7b", phase="decode", **kw):
    sizes = dict(batch=1, context=512) if phase == "decode" else dict(batch=1, seq=128)
    sizes.update(kw)
    return build_model(load_model(name), phase, **sizes)


def test_gpu_simulate_equals_roofline():
    m = model()
    a, b = simulate(m, "a100-80gb"), roofline(m, load_hardware("a100-80gb"))
    assert a.core.total_s == b.totals["total_s"]
    assert a.core.dram_bytes == pytest.approx(b.totals["bytes"], rel=1e-12)


@pytest.mark.parametrize("chip, dims", [("tpu-v1", (1, 4096, 4096)), ("tpu-v1", (512, 768, 3072)),
                                         ("tpu-v1", (300, 100, 700)), ("edge-npu", (2048, 8192, 64)),
                                         ("edge-npu", (1024, 1024, 1024))])
def test_one_gemm_equals_simulate_gemm(chip, dims):
    """Reads and writes separately (edge-npu's small accumulators spill partial sums: reads back).
    ``mapper="fixed"``: SCALE-Sim's fold order (the default mapper may place it otherwise)."""
    hw = load_hardware(chip)
    m, k, n = dims
    g = Graph("g", [gemm("g", m, k, n, dtype_bytes=1)])
    report = simulate(g, hw, mapper="fixed")
    ref = simulate_gemm(GemmShape(m, k, n), hw)
    assert report.core.busy_cycles["matrix"] == pytest.approx(ref["busy_cycles"], rel=1e-12)
    assert report.core.read_bytes["dram"] == ref["dram_read_bytes"]
    assert report.core.write_bytes["dram"] == ref["dram_write_bytes"]
    assert report.core.macs == ref["macs"]


@pytest.mark.parametrize("n", [129, 1025])
def test_cores_split_without_padding(n):
    """8 cores split N; the last core's short share moves only its own columns (no padded writes)."""
    hw = load_hardware("tpu-v4")
    m, k = 64, 256
    r = simulate(Graph("g", [gemm("g", m, k, n, dtype_bytes=2)]), hw)
    assert r.core.write_bytes["dram"] == m * n * 2  # the output, once
    assert r.core.offchip_bytes_by_role["weight"] == k * n * 2  # every filter column, once


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_conservation(chip, phase):
    hw = load_hardware(chip)
    for name in ("llama-2-7b", "mixtral-8x7b"):
        m = model(name, phase)
        r = simulate(m, hw)
        c = r.core
        peak = (hw.array.rows * hw.array.cols * hw.cores if hw.kind == "systolic" else hw.array_2d.pes)
        bw = hw.dram.bytes_per_cycle(hw.clock_hz)
        assert c.total_cycles >= c.macs / peak * (1 - 1e-9)
        assert c.total_cycles >= c.dram_bytes / bw * (1 - 1e-9)
        assert all(u <= 1 + 1e-9 for u in c.utilization.values())
        for role, need in compulsory_reads(m).items():
            assert c.offchip_bytes_by_role[role] >= need * (1 - 1e-9)
        for row in r.layers:  # per operator too
            assert row["total_cycles"] >= row["macs"] / peak * (1 - 1e-9)
            assert row["total_cycles"] >= (row["dram_read_bytes"] + row["dram_write_bytes"]) / bw * (1 - 1e-9)


def test_nothing_is_dropped():
    """Every Einsum of an MoE block has a row with a unit, and the experts cost cycles and bytes."""
    m = model("mixtral-8x7b")
    r = simulate(m, "tpu-v1")
    names = {(row["part"], row["name"]) for row in r.layers}
    for part in m.parts:
        for e in part.graph.einsums:
            assert (part.name, e.name) in names
    experts = [row for row in r.layers if row["name"] in ("moe.up", "moe.gate", "moe.down")]
    assert experts and all(row["unit_cycles"] > 0 and row["dram_read_bytes"] > 0 for row in experts)


def expert_weight_bytes(report) -> float:
    return sum(row["offchip_bytes_by_role"].get("weight", 0.0) * row["repeat"] for row in report.layers
               if row["name"] in ("moe.up", "moe.gate", "moe.down"))


def test_moe_decode_reads_expected_distinct_experts():
    cfg = load_model("mixtral-8x7b")
    E, k = cfg.moe.num_experts, cfg.moe.top_k
    one = expert_weight_bytes(simulate(model("mixtral-8x7b", batch=1), "tpu-v4"))
    many = expert_weight_bytes(simulate(model("mixtral-8x7b", batch=256), "tpu-v4"))
    per_expert = many / E  # at batch 256 every expert is touched (1 - (1 - 2/8)^256 = 1 - 1e-32)
    assert one == pytest.approx(k * per_expert, rel=1e-9)  # batch 1 reads exactly top-k experts
    b = 4
    expected = E * (1 - (1 - k / E) ** b)
    got = expert_weight_bytes(simulate(model("mixtral-8x7b", batch=b), "tpu-v4"))
    assert got == pytest.approx(expected * per_expert, rel=1e-9)


def test_moe_expected_routing_matches_monte_carlo():
    """The uniform-expected run against the mean of sampled routings (histograms) of the same batch."""
    import numpy as np

    from workloads.moe import route

    cfg = load_model("mixtral-8x7b")
    E, k, b = cfg.moe.num_experts, cfg.moe.top_k, 3
    hw = load_hardware("tpu-v4")
    expected = expert_weight_bytes(simulate(model("mixtral-8x7b", batch=b), hw))
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(40):
        counts = np.zeros(E, int)
        for _t in range(b):
            counts[rng.choice(E, size=k, replace=False)] += 1
        routing = route(b, E, k, histogram=counts.tolist())
        samples.append(expert_weight_bytes(simulate(model("mixtral-8x7b", batch=b, routing=routing), hw)))
    mean, se = float(np.mean(samples)), float(np.std(samples) / math.sqrt(len(samples)))
    assert abs(mean - expected) <= 5 * se + 1e-9 * expected


@pytest.mark.parametrize("chip, seq", [("tpu-v4", 128), ("edge-npu", 512)])
def test_dense_equals_one_expert_top1(chip, seq):
    """Cycles, MACs and every DRAM byte (edge-npu at 512 tokens re-fetches operands and spills
    partial sums: the expert GEMMs must carry the same traffic model as dense GEMMs)."""
    dense_cfg = load_model("llama-2-7b")
    moe_cfg = type(dense_cfg).model_validate({**dense_cfg.model_dump(), "moe": {
        "num_experts": 1, "top_k": 1, "expert_ffn_size": dense_cfg.ffn_size}})
    for phase in ("decode", "prefill"):
        hw = load_hardware(chip)
        rd = simulate(model("llama-2-7b", phase, **({} if phase == "decode" else {"seq": seq})), hw)
        rm = simulate(build_model(moe_cfg, phase, batch=1, **({"context": 512} if phase == "decode" else
                                                             {"seq": seq})), hw)
        dense = {r["name"]: r for r in rd.layers if r["name"] in ("ffn.up", "ffn.gate", "ffn.down")}
        moe = {r["name"]: r for r in rm.layers if r["name"] in ("moe.up", "moe.gate", "moe.down")}
        for d, e in (("ffn.up", "moe.up"), ("ffn.gate", "moe.gate"), ("ffn.down", "moe.down")):
            assert moe[e]["macs"] == dense[d]["macs"]
            assert moe[e]["unit_cycles"] == pytest.approx(dense[d]["unit_cycles"], rel=1e-12)
            assert moe[e]["offchip_bytes_by_role"]["weight"] == pytest.approx(
                dense[d]["offchip_bytes_by_role"]["weight"], rel=1e-12)
            assert moe[e]["dram_write_bytes"] == pytest.approx(dense[d]["dram_write_bytes"], rel=1e-12)
            assert moe[e]["dram_read_bytes"] == pytest.approx(dense[d]["dram_read_bytes"], rel=1e-12)


def test_overlap_approaches_the_memory_bound_and_no_overlap_is_the_sum():
    hw = load_hardware("tpu-v1")  # DDR3 at 34 GB/s: a decode step is memory bound
    m = model()
    r = simulate(m, hw)
    bound = r.core.dram_bytes / hw.dram.bytes_per_cycle(hw.clock_hz)
    assert bound <= r.core.total_cycles <= 1.03 * bound
    serial = simulate(m, hw, overlap=False)
    assert serial.core.total_cycles == pytest.approx(sum(serial.core.busy_cycles.values()), rel=1e-9)
    assert serial.core.total_cycles > r.core.total_cycles


def test_compute_bound_prefill_approaches_matrix_time():
    hw = load_hardware("tpu-v4")  # 512 tokens: activations fit the 32 MiB of VMEM, nothing spills
    r = simulate(model("llama-2-7b", "prefill", seq=512), hw)
    assert r.core.utilization["matrix"] > 0.95
    busiest = max(r.core.busy_cycles.values())
    assert busiest <= r.core.total_cycles <= 1.03 * busiest  # DMA and vector work hide behind the arrays


def _chain(widths: list[int], ops: list[OpKind]) -> Graph:
    x = Tensor("x0", ("t", "c"), (16, widths[0]), 2, TensorRole.INPUT)
    einsums = []
    for i, (w, op) in enumerate(zip(widths[1:], ops)):
        y = Tensor(f"x{i + 1}", ("t", "d"), (16, w), 2, TensorRole.ACTIVATION)
        if op is OpKind.MAC:
            wt = Tensor(f"w{i}", ("c", "d"), (x.shape[1], w), 2, TensorRole.WEIGHT)
            e = Einsum(f"mm{i}", Operand(y, ("t", "d")), (Operand(x, ("t", "c")), Operand(wt, ("c", "d"))),
                       {"t": 16, "c": x.shape[1], "d": w}, OpKind.MAC)
        else:
            y = Tensor(f"x{i + 1}", ("t", "c"), x.shape, 2, TensorRole.ACTIVATION)
            e = Einsum(f"v{i}", Operand(y, ("t", "c")), (Operand(x, ("t", "c")),), {"t": 16, "c": x.shape[1]}, op)
        einsums.append(e)
        x = Tensor(y.name, ("t", "c"), y.shape, 2, TensorRole.ACTIVATION)
        einsums[-1] = Einsum(e.name, Operand(x, e.output.index), e.inputs, e.extents, e.op, e.attrs)
    return Graph("chain", einsums)


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(1, 300), min_size=2, max_size=6),
       ops=st.lists(st.sampled_from([OpKind.MAC, OpKind.ADD, OpKind.EXP, OpKind.NORM]), min_size=5, max_size=5),
       repeat=st.integers(1, 9), chip=st.sampled_from(["tpu-v1", "fusemax-cloud"]))
def test_reports_add_up_and_repeats_scale_exactly(widths, ops, repeat, chip):
    g = _chain(widths, ops[: len(widths) - 1])
    hw = load_hardware(chip)
    one = simulate(g, hw)
    assert sum(r["dram_read_bytes"] for r in one.layers) == pytest.approx(one.core.read_bytes["dram"])
    assert sum(r["macs"] for r in one.layers) == pytest.approx(one.core.macs)
    model = ModelGraph("m", [Part("blk", g, repeat)])
    many = simulate(model, hw)
    assert many.core.total_cycles == pytest.approx(repeat * one.core.total_cycles, rel=1e-12)
    assert many.core.dram_bytes == pytest.approx(repeat * one.core.dram_bytes, rel=1e-12)
    # independent of Report.scaled: the repeats written out as one flat Graph (renamed copies,
    # simulated as one schedule) move the same bytes, and overlap between copies can only help
    flat = simulate(model.expand(), hw)
    assert flat.core.dram_bytes == pytest.approx(many.core.dram_bytes, rel=1e-12)
    assert flat.core.macs == pytest.approx(many.core.macs, rel=1e-12)
    assert flat.core.total_cycles <= many.core.total_cycles * (1 + 1e-9)
    assert flat.core.total_cycles >= max(flat.core.busy_cycles.values()) * (1 - 1e-9)


def test_an_einsum_no_unit_can_run_is_an_error():
    hw = load_hardware("tpu-v1").model_copy(update={"vector": None})
    with pytest.raises(AccelsimError, match="einsum .*norm|has no unit"):
        simulate(model(), hw)


def test_tensor_parallel_needs_links():
    with pytest.raises(AccelsimError, match="links"):
        simulate(model(tp=2), "tpu-v1")
    r = simulate(model(tp=2), "tpu-v4")
    assert r.core.busy_s["link"] > 0


def test_timeline_accounts_for_every_busy_cycle(tmp_path, capsys):
    """The exported task timeline (one run of each part) sums, per unit, to the engine's busy cycles."""
    import pandas as pd

    from tests.cli_helper import cli_in_process

    out = tmp_path / "tl.csv"
    done = cli_in_process("simulate", "--model", "gpt2", "--hardware", "tpu-v1", "--context", "128", "--blocks", "1",
                          "--timeline", str(out), "--json")
    assert done.returncode == 0, done.stderr
    tasks = pd.read_csv(out)
    r = simulate(ModelGraph("g", [Part("block", next(p for p in model("gpt2", context=128).parts
                                                      if p.name == "block").graph, 1)]), "tpu-v1")
    busy = (tasks.end - tasks.start).groupby(tasks.unit).sum()
    for unit, cycles in r.core.busy_cycles.items():
        assert busy.get(unit, 0.0) == pytest.approx(cycles, rel=1e-9, abs=1e-6)
    assert tasks.end.max() == pytest.approx(r.core.total_cycles, rel=1e-12)


def test_cnn_networks_run_by_name_from_simulate():
    import json

    from tests.cli_helper import cli_in_process
    from workloads.cnn import build_network

    done = cli_in_process("simulate", "--model", "resnet50", "--hardware", "tpu-v1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_s"] == simulate(build_network("resnet50"), "tpu-v1").core.total_s
