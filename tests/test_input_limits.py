"""Numbers too large for what they size: one clear error, decided before anything is allocated."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec
from accelsim.sweep.spec import MAX_POINTS
from tests.cli_helper import cli_in_process, one_line_error

G = [{"gemm": [8, 8, 8]}]


@pytest.mark.parametrize("path", [("array", "rows"), ("array", "cols"), ("sram", "ifmap_bytes"), ("word_bytes",)])
def test_huge_hardware_integers_are_field_errors(tmp_path, path):
    from accelsim.hardware import load_hardware

    data = load_hardware("tpu-v1").model_dump(mode="json")
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = 10**30
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml.safe_dump(data))
    one_line_error(cli_in_process("simulate", "--gemm", "64,64,64", "--hardware", str(hw)), ".".join(path), "2**53")
    node[path[-1]] = 2**53  # the bound itself is accepted by the spec
    hw.write_text(yaml.safe_dump(data))
    assert load_hardware(hw) is not None


@pytest.mark.parametrize("extra,field,count", [
    ({"parameters": {"array.rows": list(range(1, 2001)), "array.cols": list(range(1, 1001))}}, "parameters", "2,000,000"),
    ({"parameters": {"clock_hz": {"low": 1e8, "high": 1e9}}, "sampling": {"method": "random", "samples": 10**12}},
     "sampling.samples", "1,000,000,000,000"),
    ({"parameters": {"array.rows": {"range": {"start": 1, "stop": 2000, "step": 1}},
                     "array.cols": {"range": {"start": 1, "stop": 1024, "factor": 2}}},
      "workloads": [{"gemms": [[8, 8, 8]] * 60}]}, "parameters", "1,320,000"),
])
def test_huge_sweeps_are_refused_before_allocating(extra, field, count):
    start = time.monotonic()
    with pytest.raises(AccelsimError) as info:
        SweepSpec.from_dict({"workloads": G, **extra})
    assert info.value.field == field and count in str(info.value) and "--max-points" in str(info.value)
    assert time.monotonic() - start < 2


def test_range_to_1e30_is_refused_naming_its_size():
    with pytest.raises(AccelsimError, match="range has about 1e\\+30 values") as info:
        SweepSpec.from_dict({"workloads": G, "parameters": {"array.rows": {"range": {"start": 1, "stop": 10**30, "step": 1}}}})
    assert info.value.field == "parameters.array.rows.range"


def test_max_points_raises_the_limit(tmp_path):
    big = {"workloads": G, "parameters": {"array.rows": list(range(1, 1101)), "array.cols": list(range(1, 1001))}}
    with pytest.raises(AccelsimError, match="1,100,000 points"):
        SweepSpec.from_dict(big)
    assert SweepSpec.from_dict(big, max_points=1_100_000).point_count() == 1_100_000 > MAX_POINTS
    small = {"workloads": G, "parameters": {"array.rows": [8, 16, 32], "array.cols": [8, 16, 32, 64]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(small))
    one_line_error(cli_in_process("sweep", "run", str(path), "--max-points", "11", "--out", str(tmp_path / "o"),
                                  "--no-progress"), "12 points", "limit of 11")
    done = cli_in_process("sweep", "run", str(path), "--max-points", "12", "--out", str(tmp_path / "o"),
                          "--executor", "serial", "--no-progress")
    assert done.returncode == 0 and "12 points" in done.stdout, done


@settings(max_examples=25, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(1, 5), min_size=0, max_size=3), start=st.integers(1, 50),
       step=st.integers(1, 20), stop_off=st.integers(0, 100), factor=st.sampled_from([2, 3, 1.5]), n_gemms=st.integers(1, 3))
def test_point_count_is_the_expanded_count(sizes, start, step, stop_off, factor, n_gemms):
    """Independent check: the count the limit uses equals the rows the grid really expands to."""
    paths = ["array.rows", "array.cols", "sram.ifmap_bytes"]
    params = {paths[i]: list(range(1, n + 1)) if i else [8 * v for v in range(1, n + 1)] for i, n in enumerate(sizes)}
    params["options.a"] = {"range": {"start": start, "stop": start + stop_off, "step": step}}
    params["options.b"] = {"range": {"start": start, "stop": start + stop_off, "factor": factor}}
    spec = SweepSpec.model_validate({"workloads": [{"gemms": [[8, 8, 8 * (i + 1)] for i in range(n_gemms)]}],
                                     "parameters": params})
    assert spec.point_count() == len(spec.parameter_rows()) * n_gemms


# --- B5: expressions: length, depth and the cost of every operation are bounded -------------------
from accelsim.sweep import compile_expression  # noqa: E402
from accelsim.sweep.expr import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH  # noqa: E402


@pytest.mark.parametrize("text,needle", [
    ("round(x, -10**9)", "round's digits"),
    ("round(x, 10**30)", "round's digits"),
    ("'%01500000000d' % x", "formatting"),
    ("'%s' % x", "formatting"),
    ("+".join(["x"] * 1200), "characters long"),
    ("-" * 150 + "x", "levels deep"),
    ("not " * 150 + "x", "levels deep"),
    ("(" * 250 + "x" + ")" * 250, "parse"),  # beyond the Python parser's own nesting limit
    ("x\0", "null bytes"),
])
def test_costly_or_deep_expressions_are_refused_quickly(text, needle):
    start = time.monotonic()
    with pytest.raises(AccelsimError, match=needle):
        compile_expression(text, "derived.y")({"x": 12345})
    assert time.monotonic() - start < 1


def test_expression_bounds_are_exact_and_leave_real_formulas_alone():
    # Expression > UnaryOp x (D - 3) > Name > Load (the name's context node): D levels
    at_depth = "-" * (MAX_EXPRESSION_DEPTH - 3) + "x"
    assert compile_expression(at_depth)({"x": 3}) == (3 if (MAX_EXPRESSION_DEPTH - 3) % 2 == 0 else -3)
    with pytest.raises(AccelsimError, match="levels deep"):
        compile_expression("-" + at_depth)
    long_ok = "x" + " " * (MAX_EXPRESSION_CHARS - 1)
    assert compile_expression(long_ok)({"x": 1}) == 1
    with pytest.raises(AccelsimError, match="characters long"):
        compile_expression(long_ok + " ")
    sum_of_60 = " + ".join(f"a{i}" for i in range(60))
    assert compile_expression(sum_of_60)({f"a{i}": i for i in range(60)}) == sum(range(60))
    assert compile_expression("round(x, -2) + x % 7")({"x": 12345}) == 12300 + 12345 % 7


def test_cli_sweep_with_a_deep_constraint_is_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"workloads": G, "parameters": {"array.rows": [8]},
                                    "constraints": ["1" + "+1" * 5000]}))
    one_line_error(cli_in_process("sweep", "run", str(path), "--out", str(tmp_path / "o"), "--no-progress"),
                   "constraints[0]", "characters long")


# --- MoE: expert counts and Monte Carlo sizes -----------------------------------------------------
def test_huge_expert_count_is_a_field_error(tmp_path):
    from workloads.config import MAX_EXPERTS

    data = yaml.safe_load((Path(__file__).parents[1] / "workloads" / "zoo" / "mixtral-8x7b.yaml").read_text())
    data["moe"]["num_experts"] = 10**30
    path = tmp_path / "moe.yaml"
    path.write_text(yaml.safe_dump(data))
    for args in (("workloads", "experts", str(path)), ("roofline", "--model", str(path), "--device", "a100-80gb")):
        one_line_error(cli_in_process(*args), "moe.num_experts", str(MAX_EXPERTS))


def test_monte_carlo_size_is_refused_before_it_starts():
    from workloads.moe import MAX_DRAWS, MAX_DRAWS_PER_TRIAL, check_monte_carlo

    check_monte_carlo(8, 8, 2, MAX_DRAWS // 64)  # exactly at the bound: accepted
    with pytest.raises(AccelsimError, match="more than") as info:
        check_monte_carlo(8, 8, 2, MAX_DRAWS // 64 + 1)
    assert info.value.field == "trials"
    with pytest.raises(AccelsimError, match="closed form"):
        check_monte_carlo(MAX_DRAWS_PER_TRIAL // 8 + 1, 8, 2, 1)
    start = time.monotonic()
    one_line_error(cli_in_process("workloads", "experts", "mixtral-8x7b", "--trials", str(10**12)), "trials")
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("args,needle", [
    # refused by the CLI's length bounds (seq, batch) before the attention shape would refuse them
    (("attention", "--design", "fusemax", "--model", "bert", "--seq", str(10**30)), "seq"),
    (("attention", "--design", "fusemax", "--model", "bert", "--seq", "1024", "--batch", str(10**30)), "batch"),
    (("map", "fusemax", "--model", "bert", "--seq", str(10**30)), "seq"),
    (("map", "fusemax", "--model", "bert", "--seq", "1024", "--stages", str(10**30)), "stages"),
    (("map", "fusemax", "--model", "bert", "--seq", "1024", "--area-budget-um2", "1e30",
      "--buffer-budget-bytes", str(10**30)), "buffer-budget-bytes"),
])
def test_huge_attention_sizes_are_refused_quickly(args, needle):
    start = time.monotonic()
    one_line_error(cli_in_process(*args), needle)
    assert time.monotonic() - start < 5  # 10**30 tokens used to run for ever


def test_attention_sequence_bound_is_exact():
    from workloads.attention import MAX_SEQ, AttentionShape

    assert AttentionShape(1, 1, MAX_SEQ, MAX_SEQ, 64, 64).m == MAX_SEQ
    with pytest.raises(AccelsimError, match="16,777,216"):
        AttentionShape(1, 1, MAX_SEQ + 1, MAX_SEQ, 64, 64)
