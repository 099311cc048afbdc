"""A property-based fuzzer: valid input files, mutated, through the real CLI (in-process).

Whatever a mutation produces, the CLI answers with exit 0 (it was still valid) or exit 2 and one
line (a user error), never a traceback, a hang or another status. Seeds: a systolic hardware
YAML, a sweep YAML, a SCALE-Sim .cfg, SCALE-Sim topology CSVs, a zoo model YAML and a Hugging
Face config.json. Kept to a few seconds in total
(small ``max_examples``, derandomized so a failure reproduces); set ``ACCELSIM_FUZZ_EXAMPLES``
for a longer, randomized local hunt (``--hypothesis-seed=N`` reproduces one).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.hardware import load_hardware
from tests.cli_helper import cli_in_process

DATA = Path(__file__).parent / "data" / "scalesim"
EXAMPLES = int(os.environ.get("ACCELSIM_FUZZ_EXAMPLES", "10"))
_COMMON = {"deadline": None, "database": None,
           "derandomize": "ACCELSIM_FUZZ_EXAMPLES" not in os.environ,  # a long hunt explores new inputs
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}
FUZZ = settings(max_examples=EXAMPLES, **_COMMON)
FUZZ_SWEEP = settings(max_examples=max(EXAMPLES // 2, 1), **_COMMON)  # a sweep run costs most

# Values that have broken readers before: wrong types, names that are lists, numbers beyond
# int64/float, NaN, format characters, code references, paths outside the tree, empty things.
HOSTILE_VALUES = st.sampled_from([
    None, [], {}, [1, 2], {"a": 1}, "", " ", "x" * 300, -1, 0, 1, 3, 2.5, 10**30, -(10**30), 2**63, 1e308, -1e308,
    float("nan"), float("inf"), True, "%(x)s", "50%", "os:system", "../../etc", "/tmp", "[fp8]", [[[[1]]]], "0x10",
    "1e400", "\u00e9", "ws", "gpu"])


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw, seed: Any) -> Any:
    """``seed`` with 1-3 mutations: a value replaced, a key deleted, or an unknown key added."""
    import copy

    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        *parents, leaf = path
        node = doc
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and isinstance(node, dict):
            node.pop(leaf, None)
        elif action == "add" and isinstance(node, dict):
            node[draw(st.sampled_from(["bogus", "kind", "name", "x.y"]))] = copy.deepcopy(draw(HOSTILE_VALUES))
        else:  # a copy: sampled_from hands out one shared object, and a list must not contain itself
            node[leaf] = copy.deepcopy(draw(HOSTILE_VALUES))
    return doc


@st.composite
def mutated_text(draw, text: str) -> str:
    """Line/field mutations of a text file: a field replaced, a line dropped or duplicated, junk."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["field", "field", "drop", "dup", "junk"]))
        if action == "drop":
            lines.pop(i)
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "junk":
            lines.insert(i, draw(st.sampled_from(["%", "[x", "=", ",,,,", "\x00", "a" * 500, "[general]", ";c"])))
        else:
            sep = ":" if ":" in lines[i] else "=" if "=" in lines[i] else ","
            parts = lines[i].split(sep)
            j = draw(st.integers(0, len(parts) - 1))
            parts[j] = str(draw(st.sampled_from(["", "-1", "0", "abc", "1.5", str(10**30), "%(a)s", "50%", " ",
                                                  "os", "ws", "xs", "9" * 5000, "USER", "CALC", "1,2"])))
            lines[i] = sep.join(parts)
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


def _check(done) -> None:
    assert done.returncode in (0, 2), done
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 2:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _run_on_file(name: str, text: str, *args: str) -> None:
    """Write ``text`` to a fresh ``name`` and run the CLI with ``{path}``/``{dir}`` filled in."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, errors="surrogateescape")
        _check(cli_in_process(*(a.format(path=path, dir=tmp) for a in args)))


HARDWARE = load_hardware("tpu-v1").model_dump(mode="json")
SWEEP = {"name": "fuzz", "hardware": "tpu-v1", "parameters": {"array.rows": [8, 16], "clock_hz": {"low": 1e8, "high": 1e9}},
         "workloads": [{"gemm": [16, 8, 8]}, {"transformer_layer": {"seq": 8, "d_model": 16, "d_ff": 32, "heads": 2}}],
         "evaluator": {"name": "systolic", "options": {}}, "derived": {"pe": "array.rows * array.cols"},
         "constraints": ["array.rows <= 64"], "sampling": {"method": "random", "samples": 2, "seed": 1}}
MODEL = yaml.safe_load((Path(__file__).parents[1] / "workloads" / "zoo" / "mixtral-8x7b.yaml").read_text())
HF_CONFIG = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "torch_dtype": "float16",
             "quantization_config": {"quant_method": "fp8"}}


@FUZZ
@given(mutated(HARDWARE))
def test_fuzz_hardware_yaml(doc):
    _run_on_file("hw.yaml", yaml.safe_dump(doc), "simulate", "--gemm", "16,8,8", "--hardware", "{path}")


@FUZZ_SWEEP
@given(mutated(SWEEP))
def test_fuzz_sweep_yaml(doc):
    _run_on_file("s.yaml", yaml.safe_dump(doc), "sweep", "run", "{path}", "--out", "{dir}/out", "--executor", "serial",
                 "--no-progress")


@FUZZ
@given(mutated_text((DATA / "scale.cfg").read_text()))
def test_fuzz_scalesim_cfg(text):
    _run_on_file("s.cfg", text, "simulate", "--scalesim-config", "{path}", "--gemm", "16,8,8")


@FUZZ
@given(st.sampled_from(["small_conv.csv", "small_gemm.csv"]).flatmap(lambda n: mutated_text((DATA / n).read_text())))
def test_fuzz_scalesim_topology(text):
    _run_on_file("t.csv", text, "simulate", "--topology", "{path}")


@FUZZ
@given(mutated(MODEL))
def test_fuzz_model_yaml(doc):
    _run_on_file("model.yaml", yaml.safe_dump(doc), "workloads", "show", "{path}")


@FUZZ
@given(mutated(HF_CONFIG))
def test_fuzz_hf_config_json(doc):
    import json

    _run_on_file("config.json", json.dumps(doc), "workloads", "show", "{path}")


# Numeric options of commands, given values that are out of range, huge or not numbers: exit 2 and
# one line, or exit 0 where the value is legal (roofline takes a batch of 10**30) and still cheap.
OPTION_TARGETS = [
    (("roofline", "--model", "llama-2-7b", "--device", "a100-80gb"), o) for o in ("--batch", "--seq", "--context",
                                                                                   "--tp", "--top")] + [
    (("flashattention",), o) for o in ("--seq", "--head-dim", "--heads", "--batch", "--sram-bytes")] + [
    (("attention", "--design", "fusemax", "--model", "bert", "--batch", "1"), "--seq"),
    (("map", "fusemax", "--model", "bert", "--seq", "1024"), "--stages"),
    (("map", "fusemax", "--model", "bert"), "--seq"),
    (("workloads", "experts", "mixtral-8x7b"), "--trials"),
    (("workloads", "experts", "mixtral-8x7b"), "--batches"),
    (("simulate",), "--gemm"),
]
BAD_NUMBERS = st.sampled_from(["0", "-1", "-5", str(10**30), str(2**63), "1e400", "nan", "inf", "abc", "", "1.5",
                               "1,,2", "9" * 5000])


@FUZZ
@given(st.sampled_from(OPTION_TARGETS), BAD_NUMBERS)
def test_fuzz_numeric_options(target, value):
    prefix, option = target
    _check(cli_in_process(*prefix, option, value))
