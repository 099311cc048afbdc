"""The mesh engine's layer-at-a-time convention (WaferLLM's one decoder layer per compile).

Checked against independent things: the same parts simulated one at a time by the default
(resident) convention and summed by hand; the resident convention on a model with a single part;
the resident placement's own hand-off charge; and a shortfall bounded from the weights alone.
"""
from __future__ import annotations

import json

import pytest

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import ModelGraph, Part
from accelsim.simulate import simulate
from mappers.wafer import handoff_cycles, plan
from tests.cli_helper import cli_in_process
from workloads.models import load_model
from workloads.transformer import build_model

SMALL = load_hardware("mesh-small")


def gpt2_decode():
    return build_model(load_model("gpt2"), "decode", batch=1, context=256)


def alone(model: ModelGraph, part) -> ModelGraph:
    """One copy of ``part``, built here (not with the engine's helper)."""
    return ModelGraph(f"{model.name}-{part.name}", [Part(part.name, part.graph, 1, part.input, part.output)],
                      model.config, dict(model.meta))


@pytest.mark.parametrize("grid", [64, 128])
def test_the_step_is_the_sum_of_single_part_simulations_times_repeats(grid):
    model = gpt2_decode()
    per_layer = simulate(model, SMALL, grid=grid, layer_at_a_time=True)
    singles = [(simulate(alone(model, p), SMALL, grid=grid), p.repeat) for p in model.parts]
    assert per_layer.core.total_s == pytest.approx(sum(r.core.total_s * n for r, n in singles), rel=1e-12)
    assert per_layer.core.macs == pytest.approx(sum(r.core.macs * n for r, n in singles), rel=1e-12)
    for key in ("compute_s", "communication_s", "routing_s"):
        assert per_layer.totals[key] == pytest.approx(sum(r.totals[key] * n for r, n in singles), rel=1e-12)
    # the SRAM reported is the fullest single compile, not a sum over layers
    assert per_layer.totals["sram_used_bytes"] == max(r.totals["sram_used_bytes"] for r, _ in singles)
    assert per_layer.meta["per_layer"] == [
        {"part": p.name, "repeat": p.repeat, "one_s": pytest.approx(r.core.total_s, rel=1e-12),
         "sram_used_bytes": r.totals["sram_used_bytes"]} for p, (r, _) in zip(model.parts, singles)]


def test_a_single_part_workload_gives_the_same_answer_under_both_conventions():
    # one layer and nothing else: compiling it alone is the resident placement, grid search included
    model = gpt2_decode()
    block = max(model.parts, key=lambda p: p.repeat)
    one = alone(model, block)
    resident, per_layer = simulate(one, SMALL), simulate(one, SMALL, layer_at_a_time=True)
    assert per_layer.totals["grid"] == resident.totals["grid"]
    assert per_layer.core.total_s == resident.core.total_s
    assert per_layer.totals["sram_used_bytes"] == resident.totals["sram_used_bytes"]
    assert per_layer.meta["convention"] != resident.meta["convention"]


def test_resident_minus_per_layer_is_exactly_the_resident_hand_offs():
    # at one grid both conventions cost every Einsum the same; the resident placement adds one
    # hand-off per region boundary, the per-layer convention none (and never more SRAM per core)
    model = gpt2_decode()
    for grid in (64, 128):
        resident = plan(model, SMALL, grid=grid)
        per_layer = simulate(model, SMALL, grid=grid, layer_at_a_time=True)
        regions = resident.placement.regions
        hand = (regions - 1) * handoff_cycles(SMALL, grid, 1, model.config.hidden_size)
        assert per_layer.core.total_cycles == pytest.approx(resident.cycles - hand, rel=1e-12)
        assert per_layer.totals["sram_used_bytes"] <= resident.placement.sram_used_bytes
        if grid == 64:
            assert regions > 1 and hand > 0  # the case where the two differ


def test_the_report_says_which_convention_made_the_number():
    model = gpt2_decode()
    per_layer = simulate(model, SMALL, grid=128, layer_at_a_time=True)
    assert per_layer.meta["layer_at_a_time"] is True
    assert per_layer.meta["convention"] == ("one layer per compile, x 12 layers; weights of other layers not "
                                            "resident (WaferLLM's measurement)")
    assert any("not resident" in a for a in per_layer.meta["assumptions"])
    resident = simulate(model, SMALL, grid=128)
    assert resident.meta["layer_at_a_time"] is False and "resident" in resident.meta["convention"]
    with pytest.raises(AccelsimError, match="layer_at_a_time"):
        simulate(model, SMALL, grid=128, layer_at_a_time="yes")


def test_the_cli_flag_appears_in_the_json():
    args = ("wafer", "llm", "--model", "gpt2", "--device", "mesh-small", "--context", "256", "--grid", "128x128",
            "--json")
    flagged = cli_in_process(*args, "--layer-at-a-time")
    assert flagged.returncode == 0, flagged.stderr
    doc = json.loads(flagged.stdout)
    assert doc["layer_at_a_time"] is True and "one layer per compile, x 12 layers" in doc["convention"]
    assert [row["part"] for row in doc["per_layer"]] == ["embed", "block", "head"]
    plain = json.loads(cli_in_process(*args).stdout)
    assert plain["layer_at_a_time"] is False and "per_layer" not in plain
    assert "one layer per compile" not in plain["convention"]


def test_a_layer_that_alone_does_not_fit_names_the_missing_bytes():
    model = build_model(load_model("llama-2-70b"), "decode", batch=1, context=2048)
    block = max(model.parts, key=lambda p: p.repeat)
    block_weights = sum(t.bytes for t in block.graph.tensors.values() if t.role.value == "weight")
    whole_sram = SMALL.fabric_width * SMALL.fabric_height * SMALL.sram_bytes_per_core
    with pytest.raises(AccelsimError) as caught:
        simulate(model, SMALL, layer_at_a_time=True)
    detail = caught.value.detail
    assert caught.value.field == "sram" and "layer 'block' alone" in detail
    missing_gib = float(detail.split(" GiB of SRAM missing")[0].rsplit(" ", 1)[1])
    assert missing_gib * 2**30 >= 0.99 * (block_weights - whole_sram) > 0  # at least the weights that overflow
    done = cli_in_process("wafer", "llm", "--model", "llama-2-70b", "--device", "mesh-small", "--layer-at-a-time")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "sram:" in lines[0] and "missing" in lines[0]


def test_a_70b_model_refused_resident_runs_one_layer_per_compile_on_wse2():
    wse2 = load_hardware("wse2")
    model = build_model(load_model("llama-2-70b"), "decode", batch=1, context=2048)
    with pytest.raises(AccelsimError, match="missing"):
        simulate(model, wse2, grid=720)
    report = simulate(model, wse2, grid=720, layer_at_a_time=True)
    assert report.totals["sram_used_bytes"] <= wse2.sram_bytes_per_core
    assert report.meta["per_layer"][1] == {"part": "block", "repeat": 80, "one_s": pytest.approx(
        plan(alone(model, model.parts[1]), wse2, grid=720).cycles / wse2.clock_hz, rel=1e-12),
        "sram_used_bytes": report.meta["per_layer"][1]["sram_used_bytes"]}



def test_the_label_counts_every_block_of_a_model_with_dense_and_moe_blocks():
    cfg = load_model("mixtral-8x7b")
    cfg = cfg.model_copy(update={"num_layers": 3, "hidden_size": 256, "ffn_size": 512, "num_heads": 8,
                                 "num_kv_heads": 2, "vocab_size": 1000,
                                 "moe": cfg.moe.model_copy(update={"first_dense_layers": 1})})
    model = build_model(cfg, "decode", batch=1, context=128)
    assert [(p.name, p.repeat) for p in model.parts] == [("embed", 1), ("dense_block", 1), ("moe_block", 2),
                                                           ("head", 1)]
    report = simulate(model, SMALL, grid=64, layer_at_a_time=True)
    assert report.meta["convention"].startswith("one layer per compile, x 3 layers;")


def test_accelsim_simulate_takes_the_flag_on_a_mesh_and_refuses_it_elsewhere():
    base = ("simulate", "--model", "gpt2", "--context", "256", "--json")
    done = cli_in_process(*base, "--hardware", "mesh-small", "--layer-at-a-time")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    direct = simulate(gpt2_decode(), SMALL, layer_at_a_time=True)
    assert "one layer per compile, x 12 layers" in doc["convention"]
    assert doc["total_s"] == pytest.approx(direct.core.total_s, rel=1e-12)
    refused = cli_in_process(*base, "--hardware", "a100-80gb", "--layer-at-a-time")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "layer_at_a_time" in lines[0]
