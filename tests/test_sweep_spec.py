"""Sweep specification: expansion, sampling, constraints, keys, and every bad-input message."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec, compile_expression, latin_hypercube
from accelsim.sweep.spec import Range

FIX = "tests.sweep_fixtures:analytic"


def spec(**kw):
    base = {"workloads": [{"gemm": [64, 32, 48]}], "evaluator": FIX}
    base.update(kw)
    return SweepSpec.from_dict(base, allow_code=True)  # FIX is a module:function reference


def test_grid_is_the_cartesian_product_in_declared_order():
    s = spec(parameters={"array.rows": [8, 16, 32], "array.dataflow": ["os", "ws"]},
             workloads=[{"gemm": [8, 8, 8]}, {"gemm": [16, 8, 8]}])
    pts = s.points().points
    expected = list(itertools.product([8, 16, 32], ["os", "ws"], ["gemm-8x8x8", "gemm-16x8x8"]))
    assert [(p.params["array.rows"], p.params["array.dataflow"], p.workload_label) for p in pts] == expected
    assert [p.index for p in pts] == list(range(len(expected)))
    # the parameter lands in the full hardware dict that the point evaluates
    assert all(p.hardware["array"]["rows"] == p.params["array.rows"] for p in pts)
    assert len({p.key for p in pts}) == len(pts)


def test_ranges_linear_and_geometric_include_the_stop():
    assert Range(start=16, stop=64, step=16).values() == [16, 32, 48, 64]
    assert Range(start=16, stop=256, factor=2).values() == [16, 32, 64, 128, 256]
    assert Range(start=0.1, stop=0.3, step=0.1).values() == pytest.approx([0.1, 0.2, 0.3])
    s = spec(parameters={"sram.ifmap_bytes": {"range": {"start": 1024, "stop": 8192, "factor": 2}}})
    assert [p.params["sram.ifmap_bytes"] for p in s.points().points] == [1024, 2048, 4096, 8192]


def test_constraints_skip_points_and_are_counted():
    s = spec(parameters={"array.rows": [8, 16, 32, 64], "array.cols": [8, 16, 32, 64]},
             constraints=["array.rows * array.cols <= 512", "array.rows >= array.cols or workload == 'x'"])
    exp = s.points()
    brute = [(r, c) for r in [8, 16, 32, 64] for c in [8, 16, 32, 64] if r * c <= 512 and r >= c]
    assert [(p.params["array.rows"], p.params["array.cols"]) for p in exp.points] == brute
    assert exp.skipped_by_constraints == 16 - len(brute)


def test_constraint_may_read_unswept_hardware_fields():
    s = spec(parameters={"array.rows": [8, 512]}, constraints=["array.rows * array.cols * word_bytes <= 2**16"])
    # tpu-v1 has 256 columns and 1-byte words
    assert [p.params["array.rows"] for p in s.points().points] == [8]


def test_random_and_lhs_are_seeded_and_in_bounds():
    params = {"clock_hz": {"low": 5e8, "high": 1e9}, "array.rows": {"low": 8, "high": 256, "log": True, "integer": True},
              "array.dataflow": ["os", "ws", "is"]}
    for method in ("random", "lhs"):
        a = spec(parameters=params, sampling={"method": method, "samples": 40, "seed": 3}).points().points
        b = spec(parameters=params, sampling={"method": method, "samples": 40, "seed": 3}).points().points
        c = spec(parameters=params, sampling={"method": method, "samples": 40, "seed": 4}).points().points
        assert [p.key for p in a] == [p.key for p in b]
        assert [p.key for p in a] != [p.key for p in c]
        for p in a:
            assert 5e8 <= p.params["clock_hz"] <= 1e9
            assert 8 <= p.params["array.rows"] <= 256 and isinstance(p.params["array.rows"], int)
            assert p.params["array.dataflow"] in ("os", "ws", "is")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_latin_hypercube_hits_every_stratum_once_per_dimension(n, d, seed):
    u = latin_hypercube(n, d, np.random.default_rng(seed))
    assert u.shape == (n, d)
    assert np.all((u >= 0) & (u < 1))
    for j in range(d):
        assert sorted(np.floor(u[:, j] * n).astype(int)) == list(range(n))


def test_lhs_over_a_discrete_list_balances_the_choices():
    s = spec(parameters={"array.dataflow": ["os", "ws", "is"], "clock_hz": {"low": 5e8, "high": 1e9}},
             sampling={"method": "lhs", "samples": 30, "seed": 0})
    flows = [p.params["array.dataflow"] for p in s.points().points]
    assert {f: flows.count(f) for f in set(flows)} == {"os": 10, "ws": 10, "is": 10}


def test_key_is_the_hash_of_the_full_input():
    a = spec(parameters={"array.rows": [16]}).points().points[0]
    same = spec(parameters={"array.rows": [16]}, overrides={"clock_hz": 700000000}).points().points[0]
    assert a.key == same.key  # 700e6 in the preset and 700000000 here validate to the same design
    changed = [
        spec(parameters={"array.rows": [16]}, overrides={"clock_hz": 7.01e8}),
        spec(parameters={"array.rows": [16]}, overrides={"dram.read_energy_pj_per_byte": 1.0}),
        spec(parameters={"array.rows": [16]}, workloads=[{"gemm": [64, 32, 49]}]),
        spec(parameters={"array.rows": [16]}, evaluator={"name": FIX, "options": {"scale": 2}}),
        spec(parameters={"array.rows": [16]}, derived={"x": "array.rows"}),
        spec(parameters={"array.rows": [16]}, metrics=["total_cycles"]),
    ]
    keys = {s.points().points[0].key for s in changed}
    assert a.key not in keys and len(keys) == len(changed)


def test_random_duplicates_are_dropped():
    s = spec(parameters={"array.dataflow": ["os", "ws"]}, sampling={"method": "random", "samples": 50, "seed": 1})
    exp = s.points()
    assert len(exp.points) == 2 and exp.duplicates == 48


def test_swept_hardware_preset_and_options():
    s = spec(parameters={"hardware": ["tpu-v1"], "options.scale": [1, 3]})
    pts = s.points().points
    assert [p.options["scale"] for p in pts] == [1, 3]
    assert pts[0].hardware["name"] == "tpu-v1"


def test_yaml_round_trip(tmp_path):
    s = spec(parameters={"array.rows": {"range": {"start": 8, "stop": 32, "step": 8}}}, constraints=["array.rows > 8"])
    path = tmp_path / "s.yaml"
    path.write_text(s.to_yaml())
    again = SweepSpec.from_yaml(path, allow_code=True)
    assert [p.key for p in again.points().points] == [p.key for p in s.points().points]


def test_yaml_scientific_notation_without_dot_is_a_number(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"evaluator: {FIX}\nworkloads: [{{gemm: [8, 8, 8]}}]\n"
                    "parameters:\n  clock_hz: [5e8, 1e9]\n")
    pts = SweepSpec.from_yaml(path, allow_code=True).points().points
    assert [p.params["clock_hz"] for p in pts] == [5e8, 1e9]


# --- bad input: one clear error naming the field and what is allowed -------------------------------
@pytest.mark.parametrize("kw, field, needle", [
    ({"parameters": {"array.colz": [1]}}, "parameters", "array.cols"),  # lists the valid paths
    ({"parameters": {"array.rows": []}}, "parameters.array.rows", "empty"),
    ({"parameters": {"array.rows": {"range": {"start": 64, "stop": 8, "step": 8}}}}, "parameters.array.rows.range", "below"),
    ({"parameters": {"array.rows": {"range": {"start": 8, "stop": 64, "step": 0}}}}, "parameters.array.rows.range", "positive"),
    ({"parameters": {"array.rows": {"range": {"start": 8, "stop": 64}}}}, "parameters.array.rows.range", "exactly one"),
    ({"parameters": {"array.rows": {"range": {"start": 8, "stop": 64, "factor": 1}}}}, "parameters.array.rows.range", "greater than 1"),
    ({"parameters": {"array.rows": {"low": 8, "high": 64}}}, "parameters.array.rows", "grid needs"),
    ({"parameters": {"array.rows": [8, "x"]}}, "parameters.array.rows", "mix types"),
    ({"sampling": {"method": "lhs"}}, "sampling", "samples"),
    ({"sampling": {"method": "sobol", "samples": 3}}, "sampling.method", "grid"),
    ({"overrides": {"array.colz": 3}}, "overrides", "array.cols"),
    ({"constraints": ["array.rowz > 3"]}, "constraints[0]", "array.rows"),
    ({"constraints": ["__import__('os').system('true')"]}, "constraints[0]", "whitelisted"),
    ({"constraints": ["array.rows > "]}, "constraints[0]", "cannot parse"),
    ({"workloads": []}, "workloads", "at least one"),
    ({"workloads": ["no_such_model"]}, "workloads[0]", "transformer_layer"),
    ({"workloads": [{"gemm": [8, 0, 8]}]}, "workloads[0].gemm", "positive"),
    ({"parameters": {"array.dataflow": ["xs"]}}, "array.dataflow", "os"),
    ({"parameters": {"array.rows": [8]}, "constraints": ["array.rows > 100"]}, "constraints", "no design points"),
    ({"bogus": 1}, "bogus", "unknown field"),
])
def test_bad_input_names_field_and_allowed_values(kw, field, needle):
    with pytest.raises(AccelsimError) as info:
        spec(**kw).points()
    text = str(info.value)
    assert field in text and needle in text, text


@pytest.mark.parametrize("text", [
    "().__class__", "[x for x in (1,)]", "lambda: 1", "a[0]", "open('f')", "min(1, key=abs)", "f'{1}'",
    "(1).real",
])
def test_expression_whitelist_rejects_code(text):
    with pytest.raises(AccelsimError):
        compile_expression(text, "c")


def test_expression_refuses_huge_powers():
    with pytest.raises(AccelsimError, match="exponent"):
        compile_expression("2 ** 10 ** 10", "c")({})


_ops = st.sampled_from(["+", "-", "*", "<", "<=", "==", "!=", " and ", " or "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=6), st.lists(_ops, min_size=5, max_size=5),
       st.integers(-20, 20), st.integers(1, 20))
def test_expression_agrees_with_python_on_safe_arithmetic(nums, ops, a, b):
    """Python's own evaluator is the reference on expressions that are safe to hand it."""
    text = "x.y"
    for n, op in zip(nums, ops):
        text += f"{op}{n}"
    text = f"({text}) if abs(x.y) < b else min(x.y, b) // b"
    env = {"x.y": a, "b": b}
    assert compile_expression(text)(env) == eval(text.replace("x.y", "xy"), {"abs": abs, "min": min},  # noqa: S307
                                                 {"xy": a, "b": b})


def test_shipped_example_specs_expand():
    from pathlib import Path

    import accelsim.sweep

    examples = sorted((Path(accelsim.sweep.__file__).parent / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        exp = SweepSpec.from_yaml(path).points()
        assert exp.points and exp.skipped_by_constraints > 0  # the area budget binds


# --- evaluator option names are checked before any work ------------------------------------------
def test_misspelled_evaluator_option_fails_at_spec_time():
    base = {"hardware": "tpu-v1", "parameters": {"array.rows": [8, 16]}, "workloads": [{"gemm": {"m": 8, "k": 8, "n": 8}}]}
    with pytest.raises(AccelsimError, match="unknown option 'ifmap_wordz'") as info:
        SweepSpec.from_dict({**base, "parameters": {**base["parameters"], "options.ifmap_wordz": [5]}})
    assert "ifmap_words" in str(info.value)  # the valid names are listed
    with pytest.raises(AccelsimError, match="unknown option 'ifmap_wordz'"):
        SweepSpec.from_dict({**base, "evaluator": {"name": "systolic", "options": {"ifmap_wordz": 5}}})
    SweepSpec.from_dict({**base, "parameters": {**base["parameters"], "options.ifmap_words": [5]}})  # the real one


def test_systolic_option_names_are_the_engine_signature():
    """Independent of the registry: the keyword-only parameters of the engine functions."""
    import inspect

    from accelsim.engines import systolic as engine
    from accelsim.sweep.evaluators import get_evaluator

    expected = {p.name for fn in (engine.simulate_gemm, engine.simulate_graph)
                for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(get_evaluator("systolic").option_names()) == expected


def test_misspelled_option_cli_exit_2(tmp_path):
    import yaml

    from tests.cli_helper import cli_in_process

    spec = tmp_path / "typo.yaml"
    spec.write_text(yaml.safe_dump({"hardware": "tpu-v1", "parameters": {"options.ifmap_wordz": [5]},
                                    "workloads": [{"gemm": {"m": 8, "k": 8, "n": 8}}]}))
    done = cli_in_process("sweep", "run", str(spec), "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done
    assert "ifmap_wordz" in done.stderr and not (tmp_path / "out").exists()


# --- the engine's source is part of every point key ----------------------------------------------
def test_engine_fingerprint_is_part_of_the_key(monkeypatch):
    import accelsim.sweep.evaluators as evaluators

    spec = SweepSpec.from_dict({"hardware": "tpu-v1", "parameters": {"array.rows": [8, 16]},
                                "workloads": [{"gemm": {"m": 8, "k": 8, "n": 8}}]})
    before = [p.key for p in spec.points().points]
    assert before == [p.key for p in spec.points().points]  # deterministic
    monkeypatch.setattr(evaluators, "engine_fingerprint", lambda evaluator: "an-edited-engine")
    after = [p.key for p in spec.points().points]
    assert len(set(before) | set(after)) == 2 * len(before)


def test_engine_fingerprint_follows_the_engine_source(tmp_path, monkeypatch):
    """Editing the module a ``module:function`` evaluator lives in, or an engine module it names,
    changes the fingerprint; the systolic evaluator's closure holds the engine file as on disk."""
    from pathlib import Path

    from accelsim.sweep.evaluators import Evaluator, _module_closure, engine_fingerprint, get_evaluator

    module = tmp_path / "my_eval_mod.py"
    module.write_text("def fn(hw, workload, options):\n    return {'x': 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    evaluator = get_evaluator("my_eval_mod:fn", allow_code=True)
    first = engine_fingerprint(evaluator)
    module.write_text("def fn(hw, workload, options):\n    return {'x': 2}\n")
    assert engine_fingerprint(evaluator) != first

    import accelsim.engines.systolic as systolic_engine

    closure = _module_closure(["accelsim.engines.systolic"])
    assert closure["accelsim.engines.systolic"] == Path(systolic_engine.__file__).read_bytes()
    attention = _module_closure(["accelsim.engines.spatial_attention"])
    assert "accelsim.engines.events" in attention  # followed through its import
    base = Evaluator("x", evaluator.fn, engine_modules=("accelsim.engines.systolic",))
    other = Evaluator("x", evaluator.fn, engine_modules=("accelsim.engines.roofline",))
    assert engine_fingerprint(base) != engine_fingerprint(other)


# --- expressions cannot hang on huge intermediate numbers ---------------------------------------
@pytest.mark.parametrize("text", ["((10**1000)**1000)**1000", "(9**1000)*(9**1000)*(9**1000)*(9**1000)*(9**1000)",
                                  "ceil(1e300)*ceil(1e300)*ceil(1e300)*ceil(1e300)*ceil(1e300)",
                                  "'ab' * 10**9", "10.0**400", "exp(1000)"])
def test_expression_refuses_huge_intermediates(text):
    with pytest.raises(AccelsimError, match="exceed|overflow"):
        compile_expression(text)({})


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(-1000, 1000), st.integers(0, 40), st.integers(-1000, 1000))
def test_bounded_arithmetic_matches_python(a, b, c):
    """Within the bounds the result is exactly Python's (the reference)."""
    for text in ("a ** b * c", "(a * c) ** b", "a * c - b"):
        assert compile_expression(text)({"a": a, "b": b, "c": c}) == eval(text, {}, {"a": a, "b": b, "c": c})  # noqa: S307


def test_spec_validation_errors_come_from_the_shared_reporter():
    """SweepSpec.from_dict reports pydantic errors through accelsim.yamlio.validation_error (one
    format project-wide); validator wrappers never show up in the field name."""
    from pydantic import ValidationError

    from accelsim.yamlio import validation_error

    for bad in ({"sampling": {"method": "lhs", "samples": 0}},
                {"parameters": {"array.rows": {"range": {"start": 64, "stop": 8, "step": 8}}}}):
        with pytest.raises(ValidationError) as raw:
            SweepSpec.model_validate(bad)
        with pytest.raises(AccelsimError) as info:
            SweepSpec.from_dict(bad, source="s.yaml")
        assert str(info.value) == str(validation_error(raw.value, "s.yaml"))
        assert "function-" not in str(info.value)
