"""The attention optimizer: exact against exhaustive search, never worse than the published plan."""
import math

import pytest

from accelsim.engines.spatial_attention import check_schedule, simulate
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware import load_hardware
from accelsim.hardware.spatial import SpatialAccelerator
from mappers.fusemax import (
    exhaustive,
    flat_plan,
    model_latency_cycles,
    optimize,
    published_plan,
    size_hardware,
)
from workloads.attention import AttentionShape, attention_model


def tiny(hw_name: str, buffer_bytes: int, dram_bytes_per_s: float | None = None) -> SpatialAccelerator:
    data = load_hardware(hw_name).resized(4, buffer_bytes).model_dump()
    if dram_bytes_per_s:
        data["dram"]["bandwidth_bytes_per_s"] = dram_bytes_per_s
    return SpatialAccelerator.model_validate(data)


SMALL = [AttentionShape(1, 1, 16, 16, 2, 2), AttentionShape(1, 2, 12, 20, 3, 2), AttentionShape(2, 1, 9, 7, 2, 3)]


@pytest.mark.parametrize("hw_name", ["fusemax-cloud", "flat-cloud"])
@pytest.mark.parametrize("shape", SMALL)
@pytest.mark.parametrize("dram", [None, 2e9])  # compute-bound, and memory-bound where P1 matters
def test_optimizer_matches_exhaustive_search(hw_name, shape, dram):
    hw = tiny(hw_name, 420, dram)
    best, plan = exhaustive(hw, shape, stages=3)
    res = optimize(hw, shape, "latency", stages=3, tiles=[(4, 4)])
    assert res.status == "OPTIMAL"
    assert res.value == pytest.approx(best)
    # the optimizer's objective is the same latency model the exhaustive search scores
    assert model_latency_cycles(res.plan, hw, shape) == pytest.approx(res.value)
    check_schedule(res.plan)


@pytest.mark.parametrize("model,seq", [("bert", 4096), ("xlm", 16384)])
@pytest.mark.parametrize("design,hw_name", [("fusemax", "fusemax-cloud"), ("cascade", "flat-cloud")])
def test_optimizer_never_worse_than_published(model, seq, design, hw_name):
    hw = load_hardware(hw_name)
    s = attention_model(model).shape(seq)
    pub = published_plan(design, hw, s)
    res = optimize(hw, s, "latency")
    assert res.latency_cycles <= model_latency_cycles(pub, hw, s)
    sim_pub, sim_opt = simulate(pub, hw, s), simulate(res.plan, hw, s)
    assert sum(sim_opt.traffic.values()) <= sum(sim_pub.traffic.values())
    # the simulation adds only pipeline fill on top of the model's steady state
    assert sim_opt.latency_cycles <= sim_pub.latency_cycles * (1 + 1e-5)


def test_dram_objective_is_the_fewest_kv_passes():
    from dataclasses import replace
    from accelsim.engines.spatial_attention import one_pass_buffer_bytes, traffic_bytes
    hw = load_hardware("fusemax-cloud")
    s = attention_model("bert").shape(262144)
    res = optimize(hw, s, "dram")
    pub = published_plan("fusemax", hw, s)
    assert res.dram_bytes < sum(simulate(pub, hw, s).traffic.values())
    # brute force over tiles and P1 with FuseMax's binding (no tile tensor crosses arrays)
    best = math.inf
    for p0 in (128, 256):
        for m0 in (128, 256):
            base = replace(pub, p0=p0, m0=m0)
            n_pt = math.ceil(s.p / p0)
            for p1 in range(1, n_pt + 1):
                if one_pass_buffer_bytes(replace(base, p1=p1), s, 2) > hw.buffer_bytes:
                    break
                best = min(best, sum(traffic_bytes(replace(base, p1=p1), s, hw).values()))
    assert res.dram_bytes == best
    # ties in traffic are broken by latency: full-size tiles
    assert (res.plan.p0, res.plan.m0) == (256, 256)


def test_flat_choices_follow_the_buffer():
    hw = load_hardware("flat-cloud")
    got = {seq: flat_plan(hw, attention_model("bert").shape(seq)) for seq in (1024, 4096, 16384, 65536, 262144)}
    assert got[1024].p1 == 1024 and got[1024].qk_onchip
    assert got[16384].p1 == 1024 and got[65536].p1 == 256
    assert not got[262144].qk_onchip and got[262144].p1 == 1024


def test_size_hardware_picks_fastest_within_area():
    hw = load_hardware("fusemax-cloud")
    s = attention_model("bert").shape(16384)
    rows = size_hardware(hw, s, area_budget_um2=4e8)
    fitting = [r for r in rows if r["fits_budget"]]
    assert rows[0]["latency_cycles"] == min(r["latency_cycles"] for r in fitting)
    assert all(r["area_um2"] > 4e8 for r in rows if not r["fits_budget"])
    assert rows[0]["pe_dim"] == max(r["pe_dim"] for r in fitting)  # bigger arrays are faster here


def test_infeasible_buffer_message():
    hw = tiny("fusemax-cloud", 40)
    with pytest.raises(InfeasibleError, match="bytes"):
        optimize(hw, SMALL[0], tiles=[(4, 4)])
    with pytest.raises(AccelsimError, match="objective"):
        optimize(hw, SMALL[0], objective="speed")


def test_plan_round_trips_through_a_mapping_file(tmp_path):
    from accelsim.mapping import Mapping
    from mappers.fusemax import from_mapping, to_mapping
    hw = load_hardware("fusemax-cloud")
    s = attention_model("t5").shape(3000, batch=2)
    for design in ("fusemax", "flat"):
        plan = published_plan(design, hw if design == "fusemax" else load_hardware("flat-cloud"), s)
        path = tmp_path / f"{design}.yaml"
        to_mapping(plan, hw, s).save(path)
        assert from_mapping(Mapping.load(path)) == plan


def test_pe_dimension_sweep_matches_artifact_pareto():
    """The artifact's PE-dimension sweep (pareto.csv, BERT and TrXL at 256K): latency and 2D-array
    area of the FuseMax design at PE dims 16..512 (compute-bound with a large buffer)."""
    import csv
    from pathlib import Path
    ref = Path("/work/shared/reference/fusemax/pareto.csv")
    if not ref.exists():
        pytest.skip("artifact reference tables not available")
    hw = load_hardware("fusemax-cloud")
    for r in csv.DictReader(open(ref)):
        cand = hw.resized(int(r["PE_dim"]), 64 * 2 ** 20)
        s = attention_model(r["model"]).shape(262144)
        lat_s = model_latency_cycles(published_plan("fusemax", cand, s), cand, s) / cand.clock_hz
        assert lat_s == pytest.approx(float(r["latency"]), rel=0.02)
        assert cand.area_um2()["array_2d"] == pytest.approx(float(r["array_2d_area"]), rel=0.01)


def test_energy_objective_avoids_staging_and_extra_passes():
    from accelsim.engines.spatial_attention import staged_tile_tensors
    hw = load_hardware("fusemax-cloud")
    s = attention_model("bert").shape(65536, batch=4)
    res = optimize(hw, s, "energy", tiles=[(256, 256)])
    lat = optimize(hw, s, "latency", tiles=[(256, 256)])
    assert staged_tile_tensors(res.plan) == 0  # no score tile crosses between the arrays
    assert res.dram_bytes <= lat.dram_bytes
    assert res.latency_cycles == lat.latency_cycles  # latency is the tie-breaker, and nothing is lost here


def test_flat_rule_matches_flats_published_choices():
    """FLAT's own dataflow search chose, per platform and length, the fusion granularity and
    where the scores live (flat_validation.csv). Our rule (fastest, then on chip, then coarsest)
    matches 21 of 24 BERT configurations; the three it does not are documented: cloud 128K (FLAT
    keeps rows on chip with half of them spilled; off chip moves 3% fewer bytes here) and edge
    2K/4K (FLAT keeps rows on chip spilling 6-10%)."""
    import csv
    from pathlib import Path
    ref = Path("/work/shared/reference/fusemax/flat_validation.csv")
    if not ref.exists():
        pytest.skip("artifact reference tables not available")
    sizes = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096, "8K": 8192, "16K": 16384, "32K": 32768,
             "64K": 65536, "128K": 131072, "256K": 262144, "512K": 524288, "1M": 1048576}
    differ = set()
    for r in csv.DictReader(open(ref)):
        if r["models"] != "BERT":
            continue
        hw = load_hardware("flat-" + r["platform"])
        s = attention_model("bert").shape(sizes[r["seq_len"]])
        plan = flat_plan(hw, s)
        block = int(r["P1"]) if r["fusion_granularity"] == "row" else s.p
        if (plan.p1, plan.qk_onchip) != (block, r["QK_loc"] == "onchip"):
            differ.add((r["platform"], r["seq_len"]))
    assert differ == {("cloud", "128K"), ("edge", "2K"), ("edge", "4K")}
