"""Bad input to workloads, hardware specs and their CLI commands: one line, exit 2, the field named.

Each case here once produced a traceback, a NaN result with exit 0, or a silent substitution.
"""
from __future__ import annotations

import json

import pytest

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from tests.cli_helper import cli_in_process
from workloads.config import ZOO_DIR
from workloads.models import load_model
from workloads.transformer import build_model

GPU_YAML = ("kind: gpu\nname: x\npeak_flops_per_s: {{fp16: {peak}}}\nvector_flops_per_s: 1.0e11\n"
            "memory: {{name: hbm, capacity_bytes: 1000, bandwidth_bytes_per_s: {bw}}}\n")


def one_line_exit_2(*args: str) -> str:
    done = cli_in_process(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize("peak, bw, field", [
    (".nan", "1.0e12", "peak_flops_per_s"),
    (".inf", "1.0e12", "peak_flops_per_s"),
    ("1.0e12", ".nan", "memory.bandwidth_bytes_per_s"),
    ("1.0e12", ".inf", "memory.bandwidth_bytes_per_s"),
])
def test_gpu_spec_rejects_nan_and_inf(tmp_path, peak, bw, field):
    path = tmp_path / "gpu.yaml"
    path.write_text(GPU_YAML.format(peak=peak, bw=bw))
    with pytest.raises(AccelsimError) as err:
        load_hardware(str(path))
    assert err.value.field.startswith(field)
    # and through the CLI: exit 2, not a NaN time with exit 0
    assert field.split(".")[0] in one_line_exit_2("roofline", "--model", "gpt2", "--device", str(path))


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_model_config_rejects_nan_and_inf(tmp_path, value):
    text = (ZOO_DIR / "mixtral-8x7b.yaml").read_text().replace("top_k: 2,", f"top_k: 2, capacity_factor: {value},")
    assert "capacity_factor" in text
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert "moe.capacity_factor" in one_line_exit_2("roofline", "--model", str(path), "--device", "h100-sxm")


def test_learned_positions_are_not_clamped():
    cfg = load_model("gpt2")  # n_positions 1024 (Hugging Face gpt2 config.json)
    with pytest.raises(AccelsimError, match="1024") as err:
        build_model(cfg, "prefill", seq=1025)
    assert err.value.field == "seq"
    with pytest.raises(AccelsimError, match="1024") as err:
        build_model(cfg, "decode", context=1024)  # the new token would sit at position 1024
    assert err.value.field == "context"
    build_model(cfg, "prefill", seq=1024)
    build_model(cfg, "decode", context=1023)
    assert "seq" in one_line_exit_2("roofline", "--model", "bert-base", "--device", "t4", "--phase", "prefill",
                                    "--seq", "513")


def test_directories_and_empty_names_are_one_line_errors(tmp_path):
    one_line_exit_2("roofline", "--model", str(tmp_path), "--device", "h100-sxm")
    one_line_exit_2("roofline", "--model", "gpt2", "--device", str(tmp_path))
    one_line_exit_2("workloads", "show", "")
    one_line_exit_2("workloads", "show", str(tmp_path))


def test_malformed_model_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nhidden_size: [1, 2\nnum_layers: 3\n")
    assert "malformed YAML at line" in one_line_exit_2("roofline", "--model", str(path), "--device", "t4")


@pytest.mark.parametrize("args, field", [
    (("--trials", "-3"), "trials"),
    (("--context", "-5"), "context"),
    (("--batches", "4,0"), "batches"),
])
def test_experts_validates_before_printing(args, field):
    done = cli_in_process("workloads", "experts", "mixtral-8x7b", *args)
    assert done.returncode == 2 and field in done.stderr
    assert done.stdout == ""  # no table header before the error


def test_simulate_distinct_experts_needs_a_trial():
    from workloads.moe import simulate_distinct_experts

    with pytest.raises(AccelsimError, match="trials"):
        simulate_distinct_experts(4, 8, 2, trials=0)


def test_top_must_not_be_negative():
    assert "top" in one_line_exit_2("roofline", "--model", "gpt2", "--device", "t4", "--top", "-1")


def test_prefill_json_omits_context_decode_keeps_it():
    pre = json.loads(cli_in_process("roofline", "--model", "gpt2", "--device", "t4", "--phase", "prefill",
                                    "--seq", "64", "--json").stdout)
    dec = json.loads(cli_in_process("roofline", "--model", "gpt2", "--device", "t4", "--context", "7",
                                    "--json").stdout)
    assert "context" not in pre and dec["context"] == 7


def test_one_yaml_reader_shared_by_hardware_and_models():
    import accelsim.hardware.base as base
    import accelsim.yamlio as yamlio
    import workloads.models as models

    assert base.read_yaml is yamlio.read_yaml is models.read_yaml


def test_build_network_rejects_unknown_option_but_not_builder_bugs(monkeypatch):
    from workloads import cnn

    with pytest.raises(AccelsimError, match="bogus") as err:
        cnn.build_network("resnet50", bogus=1)
    assert "image_size" in str(err.value)

    def broken(image_size: int = 8) -> None:
        raise TypeError("a bug inside the builder")

    monkeypatch.setitem(cnn.NETWORKS, "broken", cnn.NetworkInfo(broken, "test"))
    with pytest.raises(TypeError, match="bug inside"):  # not reported as the user's bad option
        cnn.build_network("broken", image_size=4)


def test_json_files_are_parsed_as_json(tmp_path):
    from accelsim.yamlio import read_yaml

    path = tmp_path / "c.json"
    path.write_text('{"rms_norm_eps": 1e-05, "rope_theta": 1e6}')
    assert read_yaml(path) == {"rms_norm_eps": 1e-05, "rope_theta": 1e6}  # PyYAML 1.1 would give strings
    path.write_text('{"a": 1,}')
    with pytest.raises(AccelsimError, match="malformed JSON at line 1"):
        read_yaml(path)
