"""Hostile or odd input files end in one line and exit 2, in bounded time: never a traceback, a
hang or a memory blow-up (SCALE-Sim '%', YAML alias bombs and deep nesting, lists for names)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from accelsim.errors import AccelsimError
from accelsim.scalesim_io import read_scalesim_config
from accelsim.yamlio import MAX_DEPTH, MAX_NODES, read_yaml
from tests.cli_helper import cli_in_process, one_line_error

SCALE_CFG = (Path(__file__).parent / "data" / "scalesim" / "scale.cfg").read_text()
LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "torch_dtype": "float16"}


# --- B1: SCALE-Sim .cfg values are raw text ---------------------------------------------------------
@pytest.mark.parametrize("run_name", ["50%_sparse", "%(ArrayHeight)s", "100%", "%%"])
def test_percent_in_scalesim_cfg_is_text(tmp_path, run_name):
    path = tmp_path / "p.cfg"
    path.write_text(SCALE_CFG.replace("scale_example_run_32x32_os", run_name))
    assert read_scalesim_config(path).name == run_name  # verbatim, as SCALE-Sim's own reader keeps it
    done = cli_in_process("simulate", "--scalesim-config", str(path), "--gemm", "8,8,8")
    assert done.returncode == 0, done


def test_percent_in_a_number_is_a_field_error(tmp_path):
    path = tmp_path / "p.cfg"
    path.write_text(SCALE_CFG.replace("ArrayHeight:    32", "ArrayHeight: 32%"))
    one_line_error(cli_in_process("simulate", "--scalesim-config", str(path), "--gemm", "8,8,8"), "ArrayHeight")


# --- B2: YAML alias bombs and deep nesting ----------------------------------------------------------
def billion_laughs(levels: int = 9) -> str:
    text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels + 1):
        text += f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n"
    return text


HOSTILE = {
    "bomb": (billion_laughs(), "alias bomb"),
    "deep_flow": ("kind: systolic\nx: " + "[" * 3000 + "]" * 3000 + "\n", "levels deep"),
    "deep_block": ("".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v\n",
                   "levels deep"),
    "recursive": ("kind: systolic\nx: &x [*x]\n", "recursive"),
}


# Every reader goes through accelsim.yamlio, so each command meets the bomb; the whole set (the
# deep ones cost most: PyYAML recurses once per level until Python's limit) runs through one.
CASES = [(("simulate", "--gemm", "8,8,8", "--hardware"), name) for name in sorted(HOSTILE)] + [
    (command, name) for command in (("workloads", "show"), ("sweep", "run", "--no-progress"))
    for name in ("bomb", "recursive", "deep_block")]


@pytest.mark.parametrize("command,name", CASES)
def test_hostile_yaml_is_refused_quickly(tmp_path, name, command):
    text, needle = HOSTILE[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    start = time.monotonic()
    done = cli_in_process(*command, str(path))
    one_line_error(done, needle, path.name)
    assert time.monotonic() - start < 5  # bounded: the bomb is never expanded


def test_bounds_leave_ordinary_files_alone(tmp_path):
    """Exactly at the limits: an expansion of MAX_NODES values passes, one copy more fails.
    Counted independently of the code: the top mapping, its keys x and y, the list y, and k + 1
    copies of x (the anchor and k aliases), each a list of n scalars = n + 1 nodes."""
    path = tmp_path / "ok.yaml"
    n = 1000
    k = (MAX_NODES - 4) // (n + 1) - 1

    def text(copies):
        return "x: &x [" + ", ".join(["1"] * n) + "]\n" + "y: [" + ", ".join(["*x"] * copies) + "]\n"

    assert 4 + (k + 1) * (n + 1) <= MAX_NODES < 4 + (k + 2) * (n + 1)
    path.write_text(text(k))
    data = read_yaml(path)
    assert len(data["y"]) == k and data["y"][0] == [1] * n
    path.write_text(text(k + 1))
    with pytest.raises(AccelsimError, match="alias bomb"):
        read_yaml(path)
    nested = "v"
    for _ in range(MAX_DEPTH - 1):
        nested = f"[{nested}]"
    path.write_text(nested)
    assert read_yaml(path) is not None
    path.write_text(f"[{nested}]")
    with pytest.raises(AccelsimError, match="levels deep"):
        read_yaml(path)


def test_deep_json_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AccelsimError, match="levels deep"):
        read_yaml(path)
    path.write_text(json.dumps({"a": [[[[[[[[1]]]]]]]]}))
    assert read_yaml(path)["a"][0][0][0][0][0][0][0] == [1]


# --- B3: a list or mapping where a name is expected -------------------------------------------------
@pytest.mark.parametrize("kind", [[1, 2], {}, {"a": 1}])
def test_unhashable_hardware_kind(tmp_path, kind):
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump({"kind": kind, "name": "x"}))
    one_line_error(cli_in_process("simulate", "--gemm", "8,8,8", "--hardware", str(path)), "kind", "systolic")


@pytest.mark.parametrize("field,value", [("model_type", {}), ("model_type", ["llama"]), ("torch_dtype", [512]),
                                         ("torch_dtype", {"a": 1}), ("quantization_config", {"quant_method": ["fp8"]})])
def test_unhashable_names_in_hf_config(tmp_path, field, value):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, field: value}))
    one_line_error(cli_in_process("workloads", "show", str(path)), field)


@pytest.mark.parametrize("workload", [{"attention": {"model": [1]}}, {"attention": {"model": {"a": 1}}}])
def test_list_for_a_name_in_a_sweep_workload(workload):
    from accelsim.sweep import SweepSpec

    with pytest.raises(AccelsimError, match="model"):
        SweepSpec.from_dict({"hardware": "fusemax-cloud", "evaluator": "attention", "workloads": [workload]})
