"""Issue 14 hardening, section 4 items 1-4: inputs that used to give a wrong or meaningless number.

Each bad input must be one AccelsimError naming the field (exit 2 from the CLI); each good input
near a bound must still give a finite, valid-JSON result.
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import fieldchecks as fc
from accelsim.cli.jsonout import dumps, non_finite_path
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.base import spec_from_dict
from tests.cli_helper import cli_in_process


def _strict_json(text: str):
    """Parse as RFC 8259 JSON: Infinity/NaN are refused (Python's parser accepts them by default)."""
    def refuse(token):
        raise ValueError(f"non-JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def _mutated(preset: str, path: str, value):
    data = copy.deepcopy(load_hardware(preset).model_dump(mode="json"))
    node = data
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return data


# --- 1. rates, bandwidths and clocks are bounded; JSON output is finite --------------------------
@pytest.mark.parametrize("preset, path", [
    ("a100-80gb", "peak_flops_per_s.fp16"), ("a100-80gb", "vector_flops_per_s"),
    ("a100-80gb", "memory.bandwidth_bytes_per_s"), ("a100-80gb", "interconnect_bytes_per_s"),
    ("a100-80gb", "compute_efficiency"), ("tpu-v1", "clock_hz"), ("tpu-v1", "dram.bandwidth_bytes_per_cycle"),
    ("fusemax-cloud", "clock_hz"), ("fusemax-cloud", "dram.bandwidth_bytes_per_s"), ("wse2", "clock_hz"),
    ("wse2", "macs_per_cycle"), ("tpu-v4", "links.bandwidth_bytes_per_s"),
])
@pytest.mark.parametrize("value", [1e-300, 1e300])
def test_out_of_range_rates_are_refused_naming_the_field(preset, path, value):
    with pytest.raises(AccelsimError) as info:
        spec_from_dict(_mutated(preset, path, value))
    assert path in str(info.value), str(info.value)


def test_bounds_cover_every_preset():
    """The bounds are physically meaningful: every shipped (cited) preset lies inside them."""
    from accelsim.hardware import list_presets

    for spec in list_presets():
        spec_from_dict(spec.model_dump(mode="json"))  # re-validates: raises if a bound cut a real device


def test_tiny_peak_from_a_user_file_is_exit_2_not_infinity(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(_mutated("a100-80gb", "peak_flops_per_s.fp16", 1e-300)))
    done = cli_in_process("roofline", "--model", "gpt2", "--device", str(path), "--phase", "prefill", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "peak_flops_per_s.fp16" in done.stderr, done.stderr


@settings(max_examples=12, deadline=None)
@given(flops=st.floats(math.log10(fc.MIN_FLOPS_PER_S), math.log10(fc.MAX_FLOPS_PER_S)),
       bw=st.floats(math.log10(fc.MIN_BYTES_PER_S), math.log10(fc.MAX_BYTES_PER_S)))
def test_every_rate_inside_the_bounds_gives_finite_json(flops, bw):
    """Property: at any peak and bandwidth the bounds allow, a big prefill's roofline is finite and
    its JSON is valid; the time is at least FLOPs / peak (a closed-form lower bound)."""
    from accelsim.engines.roofline import roofline
    from workloads.models import load_model
    from workloads.transformer import build_model

    data = _mutated("a100-80gb", "memory.bandwidth_bytes_per_s", 10 ** bw)
    data["peak_flops_per_s"] = {k: 10 ** flops for k in data["peak_flops_per_s"]}
    data["vector_flops_per_s"] = 10 ** flops
    data["interconnect_bytes_per_s"] = 10 ** bw
    report = roofline(build_model(load_model("llama-2-70b"), "prefill", seq=4096, batch=64), spec_from_dict(data))
    t = report.totals
    assert math.isfinite(t["total_s"]) and t["total_s"] >= t["flops"] / 10 ** flops * (1 - 1e-9)
    _strict_json(dumps({k: v for k, v in t.items()}))


def test_dumps_refuses_non_finite_numbers_naming_the_path():
    assert non_finite_path({"a": [1.0, {"b": 2}]}) is None
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(AccelsimError) as info:
            dumps({"totals": {"layers": [0.5, {"total_s": bad}]}})
        assert "totals.layers[1].total_s" in str(info.value)
    with pytest.raises(AccelsimError):  # a numpy scalar converted by ``default`` is checked too
        dumps({"x": np.float32("inf")}, default=lambda v: v.item())
    assert _strict_json(dumps({"x": [1, 2.5, None, "s"]})) == {"x": [1, 2.5, None, "s"]}


def test_no_cli_module_writes_json_without_the_finite_check():
    """Every ``--json`` goes through ``accelsim.cli.jsonout.dumps`` (a new command must too)."""
    from pathlib import Path

    import accelsim.cli

    root = Path(accelsim.cli.__file__).parent
    offenders = [p.name for p in root.rglob("*.py") if p.name != "jsonout.py"
                 and ("json.dumps(" in p.read_text() or ".to_json(" in p.read_text())]
    assert offenders == []


# --- 2. booleans are not numbers ------------------------------------------------------------------
@pytest.mark.parametrize("preset, path", [
    ("a100-80gb", "memory.bandwidth_bytes_per_s"), ("tpu-v1", "array.rows"), ("tpu-v1", "clock_hz"),
    ("a100-80gb", "peak_flops_per_s.fp16"), ("fusemax-cloud", "energy.dram_pj_per_byte"),
    ("fusemax-cloud", "array_2d.ops.mac.cycles"), ("wse2", "fabric_width"),
])
def test_booleans_are_refused_for_numeric_hardware_fields(preset, path):
    with pytest.raises(AccelsimError, match="boolean") as info:
        spec_from_dict(_mutated(preset, path, True))
    assert path.split(".")[0] in str(info.value)


def test_yaml_yes_for_a_bandwidth_is_exit_2(tmp_path):
    text = yaml.safe_dump(_mutated("a100-80gb", "memory.bandwidth_bytes_per_s", 1.0)).replace(
        "bandwidth_bytes_per_s: 1.0", "bandwidth_bytes_per_s: yes")
    assert "bandwidth_bytes_per_s: yes" in text
    (tmp_path / "hw.yaml").write_text(text)
    done = cli_in_process("roofline", "--model", "gpt2", "--device", str(tmp_path / "hw.yaml"))
    assert done.returncode == 2 and "memory.bandwidth_bytes_per_s" in done.stderr and "boolean" in done.stderr


def test_ints_still_accepted_for_float_fields_and_bools_for_bool_fields():
    spec = spec_from_dict(_mutated("tpu-v1", "clock_hz", 700_000_000))
    assert spec.clock_hz == 7e8 and isinstance(spec.clock_hz, float)
    from workloads.config import config_from_dict
    from workloads.models import load_model

    data = load_model("gpt2").model_dump()
    assert config_from_dict(dict(data, tie_embeddings=False, params_published=124_000_000)).tie_embeddings is False


@pytest.mark.parametrize("field, value", [("num_layers", True), ("hidden_size", False), ("params_published", True),
                                          ("moe", {"num_experts": 8, "top_k": True, "expert_ffn_size": 64}),
                                          ("adaptive_cutoffs", [10, True])])
def test_booleans_are_refused_for_numeric_model_fields(field, value):
    from workloads.config import config_from_dict
    from workloads.models import load_model

    with pytest.raises(AccelsimError, match="boolean") as info:
        config_from_dict(dict(load_model("gpt2").model_dump(), **{field: value}))
    assert field in str(info.value)


# --- 3. spatial energies ----------------------------------------------------------------------------
@pytest.mark.parametrize("path, value, needle", [
    ("energy.compute_pj.mac", -1.0, "energy.compute_pj"),
    ("energy.compute_pj", {}, "empty"),
    ("array_2d.ops.exp.actions.mac", -6, "action counts"),
    ("energy.regfile_access_pj", -0.1, "energy.regfile_access_pj"),
    ("dram.read_energy_pj_per_byte", -1.0, "dram.read_energy_pj_per_byte"),
])
def test_negative_or_missing_spatial_energies_are_refused(path, value, needle):
    with pytest.raises(AccelsimError) as info:
        spec_from_dict(_mutated("fusemax-cloud", path, value))
    assert needle in str(info.value), str(info.value)


def test_an_action_without_an_energy_is_refused():
    data = _mutated("fusemax-cloud", "energy.compute_pj", {"mac": 1.0, "add": 1.0, "max": 1.0, "exp": 1.0})
    with pytest.raises(AccelsimError, match="divide") as info:  # the 1D div op fires 'divide'
        spec_from_dict(data)
    assert "energy.compute_pj" in str(info.value)


# --- 4. sizes ---------------------------------------------------------------------------------------
def test_head_dim_zero_is_refused_from_yaml_and_config_json(tmp_path):
    from workloads.models import load_model

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(dict(load_model("llama-2-7b").model_dump(mode="json"), head_dim=0)))
    with pytest.raises(AccelsimError, match="head_dim"):
        load_model(str(path))
    hf = tmp_path / "config.json"
    hf.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "num_key_value_heads": 0, "intermediate_size": 128,
                              "vocab_size": 100, "torch_dtype": "float16"}))
    with pytest.raises(AccelsimError, match="num_kv_heads"):  # 0 KV heads is not "MHA"
        load_model(str(hf))


def test_huge_lengths_are_refused_naming_the_limit():
    from workloads.context import MAX_BATCH, MAX_TOKENS
    from workloads.models import load_model
    from workloads.transformer import build_model

    cfg = load_model("mistral-7b")
    for kw, field, limit in ((dict(phase="prefill", seq=10**9), "seq", MAX_TOKENS),
                             (dict(phase="decode", context=10**9), "context", MAX_TOKENS),
                             (dict(phase="decode", batch=MAX_BATCH + 1), "batch", MAX_BATCH)):
        with pytest.raises(AccelsimError) as info:
            build_model(cfg, allow_long_context=True, **kw)
        assert str(info.value).startswith(field) and f"{limit:,}" in str(info.value), str(info.value)
    build_model(cfg, "decode", context=MAX_TOKENS - 1, allow_long_context=True)  # the limit itself runs


def test_sweep_overrides_validate_through_the_spec():
    from accelsim.sweep import SweepSpec

    def points(**kw):
        return SweepSpec.from_dict({"workloads": [{"gemm": [64, 32, 48]}],
                                    "evaluator": "tests.sweep_fixtures:analytic", **kw},
                                   allow_code=True).points()

    for value in (-1, "abc", True, 0):
        with pytest.raises(AccelsimError) as info:
            points(overrides={"array.rows": value})
        assert "array.rows" in str(info.value), (value, str(info.value))
    # exact big integers compare exactly; a float that overflows is an error, never inf
    kept = points(parameters={"array.rows": [8, 16]}, constraints=["array.rows < 10**1000"])
    assert len(kept.points) == 2
    with pytest.raises(AccelsimError, match="overflow"):
        points(parameters={"array.rows": [8, 16]}, constraints=["array.rows < 10**1000 / 3"])


@pytest.mark.parametrize("value", ["1e-300", "0", "1.5", "nan"])
def test_efficiency_overrides_are_bounded(value):
    done = cli_in_process("roofline", "--model", "gpt2", "--device", "a100-80gb", "--phase", "prefill",
                          "--compute-efficiency", value)
    assert done.returncode == 2 and "--compute-efficiency" in done.stderr, done.stderr


@pytest.mark.parametrize("workload", [{"zoo": {"model": "llama-2-7b", "seq": 10**9}},
                                      {"transformer_layer": {"seq": 10**9}},
                                      {"attention": {"model": "bert", "seq": 10**9}}])
def test_sweep_workloads_with_huge_lengths_are_refused(workload):
    from accelsim.sweep import SweepSpec
    from workloads.context import MAX_TOKENS

    with pytest.raises(AccelsimError) as info:
        SweepSpec.from_dict({"workloads": [workload], "evaluator": "tests.sweep_fixtures:analytic"},
                            allow_code=True).points()
    assert "seq" in str(info.value) and f"{MAX_TOKENS:,}" in str(info.value)
