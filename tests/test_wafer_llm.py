"""The mesh engine on whole models: placement search, SRAM capacity, phases, GQA and MoE."""
from __future__ import annotations

import math

import pytest

from accelsim.engines.registry import engine_for
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.simulate import simulate
from mappers.wafer import candidate_grids, fitting_placement, parts_of, plan, tokens_of
from workloads.models import load_model
from workloads.transformer import build_model

SMALL = load_hardware("mesh-small")


def tiny_moe():
    cfg = load_model("mixtral-8x7b")
    return cfg.model_copy(update={"num_layers": 2, "hidden_size": 256, "ffn_size": 512, "num_heads": 8, "num_kv_heads": 2,
                                      "vocab_size": 1000})


def test_the_issue_example_runs_on_wse2_and_reports_a_consistent_split():
    report = simulate(build_model(load_model("llama-2-7b"), "decode", batch=1, context=2048), "wse2")
    t = report.totals
    assert t["tokens_per_s"] == pytest.approx(1 / t["latency_s"])
    assert t["latency_s"] == pytest.approx(report.core.total_s)
    assert t["compute_s"] + t["communication_s"] + t["routing_s"] == pytest.approx(t["latency_s"])
    assert 0 < t["sram_used_bytes"] <= 49152
    side, regions = int(t["grid"].split("x")[0]), t["regions"]
    # every weight byte of the model sits in some core's SRAM
    model = build_model(load_model("llama-2-7b"), "decode", batch=1, context=2048)
    assert t["sram_used_bytes"] * side * side * regions >= model.weight_bytes()
    assert side * side * regions <= 750 * 994
    assert all(0 <= u <= 1 for u in report.core.utilization.values())
    assert report.core.offchip_bytes_by_role["weight"] >= 0.99 * model.weight_bytes() - 32000 * 4096 * 2


def test_the_search_picks_the_fastest_fitting_grid_exhaustively():
    model = build_model(load_model("gpt2"), "decode", batch=1, context=256)
    chosen = plan(model, SMALL)
    parts = parts_of(model)
    tokens = tokens_of(model, parts)
    def forced(grids):
        times = {}
        for g in grids:
            if fitting_placement(parts, SMALL, g, tokens) is not None:
                times[g] = plan(model, SMALL, grid=g).cycles
        return times

    searched = forced(candidate_grids(SMALL))
    assert chosen.cycles == min(searched.values()) and chosen.placement.grid == min(searched, key=searched.get)
    # the coarse candidate list loses little against a finer sweep of grids
    finer = forced(range(8, 129, 8))
    assert chosen.cycles <= 1.05 * min(finer.values())
    assert chosen.reason and str(chosen.placement.grid) in chosen.reason


def test_a_model_that_does_not_fit_says_how_much_sram_is_missing():
    model = build_model(load_model("llama-2-70b"), "decode", batch=1, context=2048)
    wse2 = load_hardware("wse2")
    problems = engine_for("mesh").check(model, wse2, None)
    assert len(problems) == 1 and problems[0].field == "sram"
    missing_gib = float(problems[0].detail.split(" GiB missing")[0].rsplit(" ", 1)[1])
    lower_bound = (model.weight_bytes() - wse2.usable_width * wse2.usable_height * 49152) / 2**30
    assert missing_gib >= lower_bound > 50
    with pytest.raises(AccelsimError, match="missing"):
        simulate(model, wse2)


def test_gqa_and_moe_models_run_in_both_phases():
    for phase, kw in (("decode", {"context": 128}), ("prefill", {"seq": 256})):
        report = simulate(build_model(tiny_moe(), phase, batch=1, **kw), SMALL)
        assert report.totals["tokens_per_s"] > 0
        names = {row["name"].split(".", 1)[-1] for row in report.layers}
        assert {"moe.up", "attn.qk"} <= names


def test_prefill_uses_meshgemm_and_decode_meshgemv():
    prefill = simulate(build_model(load_model("gpt2"), "prefill", batch=1, seq=512), SMALL, grid=128)
    decode = simulate(build_model(load_model("gpt2"), "decode", batch=1, context=512), SMALL, grid=128)
    unit = lambda r, n: next(row["unit"] for row in r.layers if row["name"].endswith(n))
    assert unit(prefill, "ffn.up") == "gemm" and unit(decode, "ffn.up") == "gemv"
    assert prefill.totals["tokens_per_s"] > decode.totals["tokens_per_s"]


def test_prefill_gets_faster_with_more_cores_while_decode_is_latency_bound():
    model = build_model(load_model("gpt2"), "prefill", batch=1, seq=512)
    small, big = (simulate(model, SMALL, grid=g).totals for g in (112, 128))
    assert big["tokens_per_s"] > small["tokens_per_s"]
    assert big["compute_s"] < small["compute_s"]
    dec = build_model(load_model("gpt2"), "decode", batch=1, context=256)
    d112, d128 = (simulate(dec, SMALL, grid=g).totals for g in (112, 128))
    # allreduces cross more hops and relay stages on the larger grid
    assert d128["communication_s"] + d128["routing_s"] > d112["communication_s"] + d112["routing_s"]


def test_forcing_a_grid_outside_the_device_is_an_error():
    model = build_model(load_model("gpt2"), "decode", batch=1, context=256)
    with pytest.raises(AccelsimError, match="grid"):
        simulate(model, SMALL, grid=129)


def test_longer_context_needs_more_sram_for_the_kv_cache():
    short, long = (plan(build_model(load_model("gpt2"), "decode", batch=1, context=c), SMALL, grid=128).placement
                   for c in (128, 1000))
    gpt2 = load_model("gpt2")
    extra = 2 * gpt2.num_layers * (1000 - 128) * gpt2.hidden_size * 2  # K and V, FP16
    assert long.kv_bytes - short.kv_bytes == pytest.approx(extra / 128**2, abs=2 * 2 * gpt2.num_layers * 2)
    assert math.isclose(long.weights_bytes, short.weights_bytes)


def two_einsum_graph(m, k, n):
    from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, gemm

    mm = gemm("y", m, k, n, out="Y")
    y = mm.output.tensor
    act = Einsum("act", Operand(Tensor("Z", ("m", "n"), (m, n)), ("m", "n")), (Operand(y, ("m", "n")),),
                 {"m": m, "n": n}, OpKind.ACTIVATION)
    return Graph("two", [mm, act])


@pytest.mark.parametrize("m", [1, 512])  # a GEMV-shaped and a GEMM-shaped product
def test_a_bare_graph_runs_and_counts_at_least_its_compulsory_bytes(m):
    graph = two_einsum_graph(m, 512, 512)
    report = simulate(graph, SMALL)
    core = report.core
    assert core.total_s > 0 and core.macs == m * 512 * 512
    assert sum(core.offchip_bytes_by_role.values()) >= graph.compulsory_bytes
    assert all(0 <= u <= 1 for u in core.utilization.values())
    assert [row["name"] for row in report.layers] == ["y", "act"]


def test_check_reports_a_graph_too_big_for_the_wafer_as_a_problem():
    problems = engine_for("mesh").check(two_einsum_graph(4, 65536, 65536), SMALL, None)
    assert problems and problems[0].field == "sram"


def test_a_forced_grid_too_small_reports_a_positive_shortfall():
    model = build_model(load_model("gpt2"), "decode", batch=1, context=256)
    with pytest.raises(AccelsimError) as caught:
        plan(model, SMALL, grid=40)
    detail = caught.value.detail
    amount = float(detail.split(" of SRAM missing")[0].rsplit(" ", 2)[1])
    # the 77 MB embedding table alone overflows the first 40 x 40 region (1600 cores x 48 KB = 79 MB with its blocks)
    assert caught.value.field == "sram" and amount > 0


def test_wse2_halo_leaves_the_usable_grid_the_sdk_reports():
    # WaferLLM compiles P x P kernels into --fabric-dims P+7, P+2 on a 757 x 996 fabric; the SDK's
    # "conceptual view" reports about 750 x 994 usable cores
    wse2 = load_hardware("wse2")
    assert (wse2.usable_width, wse2.usable_height) == (750, 994)
    assert wse2.fabric_width - wse2.usable_width == 7 and wse2.fabric_height - wse2.usable_height == 2
    assert wse2.elements_per_wavelet == 2 and wse2.beta_cycles == 2 * 2 + 1  # FP16 pairs; 2 T_R + 1, T_R = 2
