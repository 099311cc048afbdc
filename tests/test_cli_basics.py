"""The CLI's contract: readable output, and one line with exit status 2 on bad input."""
from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelsim", *args], capture_output=True, text=True, timeout=120)


def test_default_example_runs_the_whole_model():
    """``accelsim run`` prints a decode and a prefill step of Llama-2-7B on tpu-v4, and the latency
    it prints is what the library computes for that workload."""
    from accelsim.cli.commands.run import DEFAULT_HARDWARE, DEFAULT_MODEL, DEFAULT_STEPS
    from accelsim.cli.model_run import build_workload
    from accelsim.simulate import simulate

    done = run_cli("run")
    assert done.returncode == 0, done.stderr
    assert f"{DEFAULT_MODEL} decode" in done.stdout and f"{DEFAULT_MODEL} prefill" in done.stdout
    assert f"on {DEFAULT_HARDWARE}" in done.stdout
    for phase, sizes in DEFAULT_STEPS:
        report = simulate(build_workload(DEFAULT_MODEL, phase, **sizes)[0], DEFAULT_HARDWARE)
        assert f"{report.core.total_s * 1e3:.4g} ms" in done.stdout
    for needle in ("ffn.up", "matrix", "vector", "dma", "kv_cache"):  # every unit and role is shown
        assert needle in done.stdout


@pytest.mark.parametrize("args, needle", [
    (("hardware", "show", "no-such-preset"), "tpu-v1"),
    (("hardware", "list", "--kind"), "--kind"),
    (("attention", "--design", "fusemax", "--model", "bert", "--seq", "abc"), "--seq"),
    (("no-such-command",), "no-such-command"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    done = run_cli(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_version_and_short_help():
    from accelsim import __version__

    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"accelsim {__version__}"
    for args in (("-h",), ("simulate", "-h"), ("hardware", "-h")):
        done = run_cli(*args)
        assert done.returncode == 0 and done.stdout.startswith("Usage: accelsim"), args


def test_listing_commands_speak_json():
    import json

    from tests.cli_helper import cli_in_process

    models = json.loads(cli_in_process("workloads", "list", "--json").stdout)
    assert {"llama-2-7b", "mixtral-8x7b"} <= {m["name"] for m in models["models"]}
    assert "resnet50" in {n["name"] for n in models["networks"]}
    presets = json.loads(cli_in_process("hardware", "list", "--json").stdout)
    assert {"tpu-v4", "wse2", "pim-gpt", "a100-cores"} <= {p["name"] for p in presets}
    done = cli_in_process("hardware", "list", "--kind", "nope")
    assert done.returncode == 2 and "allowed" in done.stderr
