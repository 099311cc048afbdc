"""``accelsim map tiling``: output, save and replay, and one-line errors for bad input."""
from __future__ import annotations

import json

import yaml

from tests.cli_helper import cli_in_process
from tests.test_multicore_engine import TINY


def _tiny_yaml(tmp_path, **changes):
    spec = json.loads(json.dumps(TINY))
    for path, value in changes.items():
        node = spec
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[keys[-1]] = value
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(spec))
    return str(p)


def test_prints_the_loop_nest_counts_and_status():
    done = cli_in_process("map", "tiling", "--gemm", "256,128,64", "--hardware", "scalesim-scale",
                          "--objective", "dram")
    assert done.returncode == 0, done.stderr
    assert "status optimal" in done.stdout and "gap 0.00%" in done.stdout and "solve_s" in done.stdout
    for level in ("dram", "sram", "pe"):
        assert f"\n  {level}" in done.stdout


def test_json_save_and_replay_agree(tmp_path):
    hw = _tiny_yaml(tmp_path)
    saved = tmp_path / "m.yaml"
    first = cli_in_process("map", "tiling", "--gemm", "64,32,48", "--hardware", hw, "--json", "--save", str(saved))
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)
    assert a["status"] == "optimal" and a["gap"] == 0 and a["dram_bytes"] >= a["compulsory_bytes"]
    again = cli_in_process("map", "tiling", "--gemm", "64,32,48", "--hardware", hw, "--json", "--replay", str(saved))
    b = json.loads(again.stdout)
    assert b["status"] == "given"
    assert (b["reads_bytes"], b["writes_bytes"], b["latency_cycles"]) == (a["reads_bytes"], a["writes_bytes"],
                                                                          a["latency_cycles"])


def _edited(tmp_path, hw, edit):
    saved = tmp_path / "m.yaml"
    cli_in_process("map", "tiling", "--gemm", "64,32,48", "--hardware", hw, "--save", str(saved))
    data = yaml.safe_load(saved.read_text())
    edit(data["tiling"]["gemm"]["levels"])
    saved.write_text(yaml.safe_dump(data))
    return cli_in_process("map", "tiling", "--gemm", "64,32,48", "--hardware", hw, "--replay", str(saved))


def _one_line_error(done, *needles):
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_loop_nests_are_one_clear_error(tmp_path):
    hw = _tiny_yaml(tmp_path)

    def unknown_rank(levels):
        levels[0]["temporal"] = [["q", 1], *levels[0]["temporal"]]

    _one_line_error(_edited(tmp_path, hw, unknown_rank), "unknown rank 'q'", "dram")

    def too_wide(levels):
        levels[-1]["spatial"] = {"rows": {"m": 8}}

    _one_line_error(_edited(tmp_path, hw, too_wide), "uses 8 instances but regs.rows has 4")

    def too_big(levels):  # everything at the registers: 64*32 + 32*48 + 64*48 elements
        for lv in levels:
            lv["temporal"], lv["spatial"] = [], {}
        levels[-1]["temporal"] = [["m", 64], ["k", 32], ["n", 48]]

    _one_line_error(_edited(tmp_path, hw, too_big), "level regs", "holds 1024 bytes")


def test_infeasible_hierarchy_and_bad_options(tmp_path):
    hw = _tiny_yaml(tmp_path, **{"core.levels.0.capacity_bytes": 4})
    _one_line_error(cli_in_process("map", "tiling", "--gemm", "8,8,8", "--hardware", hw), "level regs")
    _one_line_error(cli_in_process("map", "tiling", "--gemm", "8,8", "--hardware", hw), "--gemm")
    _one_line_error(cli_in_process("map", "tiling", "--gemm", "8,8,8", "--hardware", "scalesim-scale",
                                   "--objective", "area"), "--objective", "edp")
    _one_line_error(cli_in_process("map", "tiling", "--gemm", "8,8,8", "--hardware", "a100-80gb"),
                    "no memory hierarchy for kind 'gpu'")


def test_a_time_out_returns_the_best_mapping_with_its_gap():
    done = cli_in_process("map", "tiling", "--gemm", "32768,32768,32768", "--hardware", "a100-cores",
                          "--time-limit", "0.05", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["status"] == "time_limit" and 0 <= r["gap"] <= 1 and r["loop_nest"]


def test_a_convolution_through_its_ranks(tmp_path):
    done = cli_in_process("map", "tiling", "--conv", "1,8,4,6,6,3,3", "--padding", "1", "--hardware",
                          "scalesim-scale", "--objective", "dram", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "optimal" and report["conv"]["r"] == 3 and report["conv"]["padding"] == 1
    word = 1  # scalesim-scale's word_bytes: input 6x6 (padding not data), filters 8x4x3x3, output 8x6x6
    assert report["compulsory_bytes"] == word * (4 * 6 * 6 + 8 * 4 * 9 + 8 * 6 * 6)
    assert report["dram_bytes"] >= report["compulsory_bytes"]


def test_a_1x1_convolution_maps_as_its_gemm():
    conv = cli_in_process("map", "tiling", "--conv", "1,32,48,64,1,1,1", "--hardware", "scalesim-scale", "--json")
    gemm = cli_in_process("map", "tiling", "--gemm", "64,48,32", "--hardware", "scalesim-scale", "--json")
    a, b = json.loads(conv.stdout), json.loads(gemm.stdout)
    assert (a["dram_bytes"], a["latency_cycles"], a["energy_pj"]) == (b["dram_bytes"], b["latency_cycles"],
                                                                       b["energy_pj"])


def test_bad_convolution_options_are_one_line():
    _one_line_error(cli_in_process("map", "tiling", "--conv", "1,8,4,6,6,3", "--hardware", "scalesim-scale"),
                    "--conv", "N,K,C,P,Q,R,S")
    _one_line_error(cli_in_process("map", "tiling", "--gemm", "8,8,8", "--padding", "1", "--hardware",
                                   "scalesim-scale"), "--padding")
    _one_line_error(cli_in_process("map", "tiling", "--conv", "1,8,4,6,6,3,3", "--gemm", "8,8,8", "--hardware",
                                   "scalesim-scale"), "exactly one")
    _one_line_error(cli_in_process("map", "tiling", "--conv", "1,8,4,2,2,3,3", "--padding", "2", "--hardware",
                                   "scalesim-scale"), "padding")


def test_a_saved_convolution_nest_replays(tmp_path):
    saved = tmp_path / "conv.yaml"
    args = ("map", "tiling", "--conv", "1,8,4,6,6,3,3,2", "--padding", "1", "--hardware", "scalesim-scale", "--json")
    first = cli_in_process(*args, "--save", str(saved))
    assert first.returncode == 0, first.stderr
    again = cli_in_process(*args, "--replay", str(saved))
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert b["status"] == "given" and (a["reads_bytes"], a["writes_bytes"]) == (b["reads_bytes"], b["writes_bytes"])
