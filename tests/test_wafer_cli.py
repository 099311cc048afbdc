"""``accelsim wafer``: JSON fields, the mapper's choice, and one-line errors with exit 2."""
from __future__ import annotations

import json

import pytest

from tests.cli_helper import cli_in_process


def run_json(*args):
    done = cli_in_process("wafer", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_gemm_with_a_grid_reports_latency_from_cycles_and_clock():
    doc = run_json("gemm", "--m", "256", "--k", "256", "--n", "256", "--grid", "16x16", "--device", "mesh-small")
    assert doc["grid"] == "16x16" and doc["chosen_by"] == "given by --grid"
    assert doc["latency_s"] == pytest.approx(doc["total_cycles"] / 1e9)
    # MeshGEMM overlaps each shift with the multiply (meshgemm.csl): only part of the communication shows
    assert doc["total_cycles"] == doc["compute_cycles"] + doc["exposed_comm_cycles"]
    assert doc["exposed_comm_cycles"] <= doc["comm_cycles"]
    assert doc["compute_cycles"] == 16 ** 3 * 16  # 16 steps of a 16x16x16 tile at one MAC per cycle


def test_gemm_without_a_grid_says_which_grid_the_mapper_chose():
    doc = run_json("gemm", "--m", "512", "--k", "512", "--n", "512", "--device", "mesh-small", "--algorithm", "cannon")
    assert doc["chosen_by"].startswith("fastest of") and doc["algorithm"] == "cannon"


def test_gemv_and_llm_json():
    gemv = run_json("gemv", "--k", "4096", "--n", "4096", "--grid", "64x64", "--device", "mesh-small")
    assert gemv["latency_s"] > 0 and gemv["colours_per_router"] <= 24
    llm = run_json("llm", "--model", "gpt2", "--device", "mesh-small", "--phase", "decode", "--context", "256",
                   "--grid", "128x128")
    assert llm["grid"] == "128x128" and llm["tokens_per_s"] == pytest.approx(1 / llm["latency_s"])
    assert set(llm["time_split_s"]) == {"compute", "communication", "routing_overhead"}
    assert sum(llm["time_split_s"].values()) == pytest.approx(llm["latency_s"])


@pytest.mark.parametrize("args,field", [
    (("gemm", "--m", "64", "--k", "64", "--n", "64", "--grid", "200x200", "--device", "mesh-small"), "grid"),
    (("gemv", "--k", "4096", "--n", "4096", "--grid", "64x64", "--algorithm", "star", "--device", "mesh-small"),
     "routing"),
    (("gemm", "--m", "8", "--k", "64", "--n", "64", "--grid", "16x16", "--device", "mesh-small"), "m"),
    (("gemm", "--m", "64", "--k", "64", "--n", "64", "--grid", "4x8", "--device", "mesh-small"), "grid"),
    (("gemm", "--m", "64", "--k", "64", "--n", "64", "--algorithm", "strassen", "--device", "mesh-small"), "algorithm"),
    (("llm", "--model", "llama-2-70b", "--device", "mesh-small"), "sram"),
    (("llm", "--model", "gpt2", "--device", "a100-80gb"), "hardware"),
    (("gemv", "--k", "4096", "--n", "4096", "--groups", "0", "--device", "mesh-small"), "groups"),
])
def test_bad_input_is_one_line_and_exit_2(args, field):
    done = cli_in_process("wafer", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{field}:" in lines[0]
