"""The CLI's contract: readable output, and one line with exit status 2 on bad input."""
from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelsim", *args], capture_output=True, text=True, timeout=120)


def test_default_example_runs():
    done = run_cli("run")
    assert done.returncode == 0, done.stderr
    assert "tpu-v1" in done.stdout


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
