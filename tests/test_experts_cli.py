"""``accelsim workloads experts`` with Zipf or histogram routing, a weight datatype and --json (issue 14 s5).

Checked against closed forms: a histogram's distinct experts are its nonzero entries, and one
more distinct expert per layer reads exactly one more expert's weights (layers x 3 x d x f x bytes);
a datatype of half the size halves every weight byte.
"""
from __future__ import annotations

import json

import pytest

from tests.cli_helper import cli_in_process
from workloads.models import load_model

MIX = load_model("mixtral-8x7b")


def _doc(*args: str) -> dict:
    done = cli_in_process("workloads", "experts", "mixtral-8x7b", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_histogram_routing_reads_the_named_experts():
    two = _doc("--batches", "2", "--routing", "histogram", "--histogram", "2,2,0,0,0,0,0,0", "--dtype", "fp8")
    three = _doc("--batches", "2", "--routing", "histogram", "--histogram", "2,1,1,0,0,0,0,0", "--dtype", "fp8")
    assert two["rows"][0]["distinct_experts"] == 2 and three["rows"][0]["distinct_experts"] == 3
    one_expert = MIX.num_layers * 3 * MIX.hidden_size * MIX.moe.expert_ffn_size * 1  # fp8: one byte
    assert three["rows"][0]["weight_bytes_read"] - two["rows"][0]["weight_bytes_read"] == pytest.approx(one_expert)


def test_dtype_scales_weight_bytes_exactly():
    fp8, bf16 = _doc("--batches", "1,8", "--dtype", "fp8"), _doc("--batches", "1,8", "--dtype", "bf16")
    assert fp8["dtype_bytes"] == 1 and bf16["dtype_bytes"] == 2
    for a, b in zip(fp8["rows"], bf16["rows"]):
        assert b["weight_bytes_read"] == pytest.approx(2 * a["weight_bytes_read"])


def test_steep_zipf_routes_every_token_to_the_same_top_k():
    doc = _doc("--batches", "1,64", "--routing", "zipf", "--zipf-exponent", "100")
    assert [r["distinct_experts"] for r in doc["rows"]] == [MIX.moe.top_k] * 2
    assert doc["rows"][1]["distinct_experts_uniform"] > 7.99  # uniform routing would touch all 8


@pytest.mark.parametrize("args, field", [
    (("--routing", "histogram"), "--histogram"),
    (("--histogram", "2,2,0,0,0,0,0,0"), "--histogram"),
    (("--routing", "histogram", "--histogram", "4,0,0,0,0,0,0,0", "--batches", "2"), "histogram"),
    (("--routing", "histogram", "--histogram", "1,1,0,0,0,0,0,0", "--batches", "2"), "histogram"),
    (("--routing", "histogram", "--histogram", "2,2,0,0,0,0,0,0", "--batches", "2,4"), "--batches"),
    (("--routing", "pareto"), "--routing"), (("--zipf-exponent", "nan"), "--zipf-exponent"),
    (("--dtype", "fp4"), "--dtype"),
])
def test_bad_routing_inputs_are_one_line_exit_2(args, field):
    done = cli_in_process("workloads", "experts", "mixtral-8x7b", *args)
    assert done.returncode == 2 and field in done.stderr and done.stdout == "", done.stderr
