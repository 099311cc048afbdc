"""The pim engine on zoo models, its errors, the mapper, the CLI."""
import json

import pytest

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import Graph, gemm
from accelsim.simulate import simulate
from mappers.pim import map_gemv, map_gemv_naive
from tests.cli_helper import cli_in_process
from workloads.models import load_model
from workloads.transformer import build_model


def test_gpt2_decode_on_pim_gpt():
    r = simulate(build_model(load_model("gpt2-xl"), "decode", batch=1, context=256), "pim-gpt")
    t = r.totals
    assert t["token_latency_s"] > 0 and t["tokens_per_s"] == pytest.approx(1 / t["token_latency_s"])
    assert t["row_hit_rate"] >= 0.95
    # every GEMV on PIM, norms/softmax on the ASIC
    units = {row["name"].split(".", 1)[-1]: row["unit"] for row in r.layers}
    assert units["ffn.up"] == "pim" and units["attn.qk"] == "pim" and units["ffn_norm"] == "host"
    # the weights are read at most at the internal bandwidth: time >= bytes / internal peak
    hw = load_hardware("pim-gpt")
    assert t["token_latency_s"] >= t["pim_bytes"] / hw.internal_bytes_per_s
    # PIM-GPT publishes no energies: every component is None (not 0), so is the total
    assert t["energy_pj"] is None and {"pim_read", "host"} <= set(r.core.energy_unknown)


def test_attention_only_dispatch_and_energy_on_hbm3_pim():
    r = simulate(build_model(load_model("llama-2-7b"), "decode", batch=4, context=512), "hbm3-pim")
    pim_ops = {row["name"].split(".", 1)[-1] for row in r.layers if row["unit"] == "pim"}
    assert pim_ops == {"attn.qk", "attn.pv"}
    assert r.totals["energy_pj"] > 0


def test_model_that_does_not_fit_says_how_many_bytes_are_missing():
    with pytest.raises(AccelsimError, match="bytes missing"):
        simulate(build_model(load_model("llama-2-7b"), "decode", batch=1, context=128), "pim-gpt")


def test_small_gemm_graph_meets_the_interface():
    g = Graph("two", [gemm("mm", 1, 1024, 1024)])
    r = simulate(g, "pim-gpt")
    assert r.core.total_s > 0 and r.core.read_bytes["dram"] + r.core.write_bytes["dram"] >= g.compulsory_bytes
    assert all(0 <= u <= 1 for u in r.core.utilization.values())


def test_pim_gpt_mapping_hits_rows_and_balances_banks():
    # 4096 x 4096 BF16 over 8 channels x 16 banks, 2 KB rows, 32-B columns
    good = map_gemv(4096, 4096, 2, 128, 2048, 32)
    assert good.row_hit_rate() >= 0.95 and good.load_balance == 1.0 and good.row_utilization == 1.0
    # short neurons (k = 64: one attention head) concatenated fill rows; one neuron per row would not
    short = map_gemv(64, 8192, 2, 128, 2048, 32)
    naive = map_gemv_naive(64, 8192, 2, 128, 2048, 32)
    assert short.row_hit_rate() >= 0.95 > naive.row_hit_rate()
    # uneven neuron counts show up as imbalance
    assert map_gemv(64, 130, 2, 128, 2048, 32).load_balance == pytest.approx(2 / (130 / 128))


def test_lanes_must_divide_the_row():
    with pytest.raises(AccelsimError, match="do not divide"):
        map_gemv(100, 100, 3, 16, 2048, 32)


def test_cli_attention_json():
    done = cli_in_process("pim", "attention", "--level", "bank", "--heads", "20", "--head-dim", "64",
                          "--context", "256", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["cycles"] > 0 and doc["commands"]["mac"] > 0


def test_cli_rejects_bad_level_and_zero_heads():
    assert cli_in_process("pim", "attention", "--level", "rank", "--heads", "4", "--context", "64").returncode == 2
    assert cli_in_process("pim", "attention", "--heads", "0", "--context", "64").returncode == 2


def test_duplex_op_per_byte_dispatch_on_moe():
    # Duplex: GEMVs with MACs per streamed byte below 8 on Logic-PIM, the rest on the xPU;
    # recomputed here from the graph's tensors, not from the engine
    g = build_model(load_model("mixtral-8x7b"), "decode", batch=32, context=1024, tp=4)
    r = simulate(g, "duplex")
    units = {row["name"]: row["unit"] for row in r.layers}
    seen = set()
    for part in g.parts:
        for e in part.graph.einsums:
            streamed = [o.tensor for o in e.inputs if o.tensor.role.value in ("weight", "kv_cache")]
            if e.op.value != "mac" or not streamed:
                continue
            w = streamed[0]
            nbytes = w.bytes * float(e.attrs.get("touched", {}).get(w.name, 1.0))
            op_b = e.macs * float(e.attrs.get("flop_fraction", 1.0)) / nbytes
            expect = "pim" if op_b < 8 else "host"
            if e.attrs.get("kind") == "moe_expert":
                expect = "pim+host"  # experts are co-processed (next test)
            assert units[f"{part.name}.{e.name}"] == expect, (e.name, op_b)
            seen.add(expect)
    assert seen == {"pim", "host", "pim+host"}  # this batch splits the model between the two


def test_expert_coprocessing_is_the_best_integer_split():
    from accelsim.engines.pim.engine import coprocess_cost, host_cost, pim_cost

    hw = load_hardware("duplex")
    g = build_model(load_model("mixtral-8x7b"), "decode", batch=64, context=1024, tp=4)
    experts = [e for p in g.parts for e in p.graph.einsums if e.attrs.get("kind") == "moe_expert"]
    assert experts
    for e in experts:
        n = round(e.attrs["distinct_experts"])
        t_p, t_h = pim_cost(e, hw)["time_s"] / n, host_cost(e, hw)["time_s"] / n
        brute = min(max(x * t_p, (n - x) * t_h) for x in range(n + 1))
        c = coprocess_cost(e, hw)
        assert c["time_s"] == pytest.approx(brute)
        assert c["time_s"] <= min(n * t_p, n * t_h) + 1e-15


def test_zero_context_is_a_problem_not_a_number():
    from accelsim.engines.pim.engine import PimEngine

    with pytest.raises(AccelsimError):
        build_model(load_model("gpt2"), "decode", batch=0, context=16)
    hw = load_hardware("pim-gpt")
    big = Graph("big", [gemm("mm", 1, 65536, 65536)])  # 8 GiB of weights on a 4 GiB device
    problems = PimEngine().check(big, hw, None)
    assert problems and "bytes missing" in problems[0].detail


def test_decode_loop_exact_and_sampled():
    from workloads.serving import decode_run

    cfg = load_model("gpt2")
    exact = decode_run(cfg, "pim-gpt", batch=2, prompt_len=100, output_len=6, samples=6)
    steps = sum(simulate(build_model(cfg, "decode", batch=2, context=100 + i), "pim-gpt").totals["token_latency_s"]
                for i in range(6))
    assert exact.total_s == pytest.approx(steps, rel=1e-12)
    assert exact.tokens_per_s == pytest.approx(12 / steps)
    sampled = decode_run(cfg, "pim-gpt", batch=2, prompt_len=100, output_len=6, samples=3)
    assert sampled.total_s == pytest.approx(steps, rel=0.01)
    with pytest.raises(AccelsimError):
        decode_run(cfg, "pim-gpt", batch=0, prompt_len=10, output_len=4)


def test_cli_decode():
    done = cli_in_process("pim", "decode", "--model", "gpt2", "--device", "pim-gpt", "--context", "64", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["tokens_per_s"] > 0 and any(op["unit"] == "pim" for op in doc["operators"])
    too_big = cli_in_process("pim", "decode", "--model", "llama-2-7b", "--device", "pim-gpt")
    assert too_big.returncode == 2 and "bytes missing" in (too_big.stderr + too_big.stdout)
