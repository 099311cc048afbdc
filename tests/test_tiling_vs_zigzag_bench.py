"""``benchmarks/tiling_vs_zigzag.py`` without ZigZag: the help, the tpu_like description, and the
accelsim half of a layer checked against closed forms (ZigZag itself is an optional extra)."""
from __future__ import annotations

import math

import pytest

from accelsim.engines.loopnest import evaluate
from accelsim.tiling import LevelLoops, LoopNest, check_capacities
from benchmarks import tiling_vs_zigzag as bench
from benchmarks.zigzag_accelsim_side import (
    LAYERS,
    Layer,
    load_tpu_like,
    mac_side_output_bytes,
    problem_of,
    run_accelsim,
    zigzag_energy_pj,
    zigzag_layer,
)


def test_help_names_the_venv_option(capsys):
    with pytest.raises(SystemExit) as done:
        bench.main(["--help"])
    assert done.value.code == 0
    assert "--zigzag-venv" in capsys.readouterr().out


def test_description_is_zigzag_tpu_like():
    h, table = load_tpu_like()
    assert h.peak_macs_per_cycle == 32 * 32  # tpu_like operational_array sizes [32, 32]
    _pe, sram, dram = h.levels
    assert sram.capacity_by_tensor["A+C"] == 16777216 // 8  # sram_2MB (bits) shared by I and O
    assert sram.capacity_by_tensor["B"] == 32 * 32 * 1024 // 8  # one rf_128B (1024 bits) per MAC
    assert dram.bandwidth_bytes_per_cycle == 64 / 8
    assert math.isclose(h.mac_pj, 0.04 + 0.095 + 2 * 0.021)
    assert math.isclose(dram.read_pj_per_byte, 700 / 8) and math.isclose(dram.write_pj_per_byte, 750 / 8)
    assert math.isclose(sram.read_pj_per_byte, 416.16 / 256, rel_tol=1e-5)
    assert table["dram"]["C"] == (dram.read_pj_per_byte, dram.write_pj_per_byte)
    assert sram.energy_pj_per_byte("B") == (0.0, 0.095)  # rf_128B filled; its per-MAC read is in mac_pj
    assert sram.bandwidth_bytes_per_cycle == 2 * 2048 / 8 + 2 * 1024 * 8 / 8  # SRAM + registers' ports
    assert {f.name: f.allowed_ranks for f in sram.fanouts} == {"rows": {"k", "n"}, "cols": {"k", "n"}}


def test_layers_describe_the_same_work_to_both_tools():
    for layer in LAYERS:
        zz = zigzag_layer(layer)
        assert math.prod(zz["loop_sizes"]) == layer.macs == problem_of(layer).points


def _nest(order_at_sram):
    return LoopNest("g", {"m": 64, "k": 64, "n": 64},
                    (LevelLoops("dram"), LevelLoops("sram", order_at_sram, {"rows": {"m": 32}, "cols": {"n": 32}}),
                     LevelLoops("pe")))


@pytest.mark.parametrize("order, writes_per_output", [((("m", 2), ("n", 2), ("k", 64)), 1),
                                                      ((("k", 64), ("m", 2), ("n", 2)), 64)])
def test_mac_side_partial_sums_closed_form(order, writes_per_output):
    """k innermost: each partial sum stays in the MAC until done (one write, no read-back);
    k outermost: every one of the 64 steps writes it and all but the first read it back."""
    h, _ = load_tpu_like()
    problem = problem_of(Layer("g", m=64, k=64, n=64))
    nest = _nest(order)
    check_capacities(nest, problem, h)
    writes, reads = mac_side_output_bytes(nest, problem)
    outputs_bytes = 64 * 64 * 2
    assert writes == outputs_bytes * writes_per_output
    assert reads == outputs_bytes * (writes_per_output - 1)
    cost = evaluate(nest, problem, h)
    assert cost.writes_bytes["pe"]["C"] >= writes and cost.reads_bytes["pe"]["C"] >= reads


def test_accelsim_half_of_one_gemm():
    """Everything fits: the optimum moves only compulsory DRAM bytes, runs at the array's peak
    (or DRAM's), and its ZigZag-convention energy is at least the per-MAC and compulsory DRAM energy."""
    h, table = load_tpu_like()
    layer = Layer("small", m=128, k=256, n=64)
    row = run_accelsim(layer, "latency", 10.0, h, table)
    assert row["status"] == "optimal"
    a, b, c = 128 * 256, 256 * 64, 128 * 64 * 2
    assert row["dram_bytes"] == row["compulsory_bytes"] == a + b + c
    assert row["latency_cycles"] == max(layer.macs / 1024, (a + b + c) / 8)
    floor = layer.macs * 0.177 + (a + b) * 87.5 + c * 93.75
    assert row["zigzag_energy_pj"] >= floor
    assert row["zigzag_energy_pj"] < floor * 1.1  # on-chip accesses are cheap next to DRAM's


def test_no_zigzag_run_writes_the_table(tmp_path, capsys):
    bench.main(["--no-zigzag", "--layers", "resnet50-conv4-1x1", "--out", str(tmp_path)])
    text = (tmp_path / "tiling_vs_zigzag.md").read_text()
    assert "resnet50-conv4-1x1" in text and "not run" in text
    assert (tmp_path / "tiling_vs_zigzag.csv").exists()
    assert "resnet50-conv4-1x1" in capsys.readouterr().out


def test_energy_recost_counts_every_access_once():
    """With zero on-chip energies in the table, the re-costed energy is the per-MAC part plus
    DRAM bytes at DRAM's energy: nothing else is added."""
    h, table = load_tpu_like()
    zero = {lv: {r: (0.0, 0.0) for r in roles} for lv, roles in table.items()}
    zero["dram"] = table["dram"]
    problem = problem_of(Layer("g", m=64, k=64, n=64))
    nest = _nest((("m", 2), ("n", 2), ("k", 64)))
    cost = evaluate(nest, problem, h)
    dram_pj = (sum(cost.reads_bytes["dram"].values()) * 87.5 + sum(cost.writes_bytes["dram"].values()) * 93.75)
    assert math.isclose(zigzag_energy_pj(nest, problem, cost, h, zero), cost.macs * h.mac_pj + dram_pj)
