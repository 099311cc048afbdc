"""Every ``accelsim`` command the README shows runs (with small settings) and leaves the repository
as it found it; every benchmark script has a working ``--help``.

Why parse the README: its commands are what a new user types first; a renamed option or a moved
file must fail here, not on their machine.
"""
from __future__ import annotations

import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helper import cli_in_process

ROOT = Path(__file__).resolve().parents[1]

# Small settings: the README shows full-size runs; these keep each under a few seconds.
SMALLER = [
    (r"--seq (65536|16384)", "--seq 1024"),
    (r"--trials \d+", "--trials 50"),
    (r"--time-limit \d+", "--time-limit 2"),
    (r"--model llama-2-70b", "--model llama-2-7b"),
    (r"--scratchpad M_R --divide 20", "--scratchpad M_R --divide 20 --time-limit 2"),
    (r"--gemm 8192,4096,4096", "--gemm 1024,512,512"),
    (r"--m 8192 --k 8192 --n 8192", "--m 1024 --k 1024 --n 1024"),
    (r"--requests \d+", "--requests 12"),
]
# Lines that are patterns rather than commands (alternatives, placeholders, a remote scheduler).
NOT_A_COMMAND = re.compile(r"\[|\||SPEC|tcp://|mappings\.csv|\.onnx|config\.json")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.split(r"\s+#", line)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("accelsim ") and not NOT_A_COMMAND.search(part):
                    lines.append(part)
    return lines


def small(command: str) -> str:
    for pattern, repl in SMALLER:
        command = re.sub(pattern, repl, command)
    if command.startswith("accelsim map ") and "--time-limit" not in command:
        command += " --time-limit 2"
    return command


def status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def test_readme_commands_run_and_leave_the_repository_clean(monkeypatch):
    commands = readme_commands()
    assert len(commands) >= 30, "the README's command blocks were not found"
    before = status()
    monkeypatch.chdir(ROOT)
    failed = []
    for command in commands:
        done = cli_in_process(*shlex.split(small(command))[1:])
        if done.returncode != 0:
            failed.append(f"{small(command)}\n    -> exit {done.returncode}: {done.stderr.strip()[-300:]}")
    assert not failed, "README commands that fail:\n" + "\n".join(failed)
    assert status() == before, "README commands left files in the repository"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")  # scripts, not helpers
                                          if not p.name.endswith("_runner.py") and "__main__" in p.read_text()))
def test_every_benchmark_has_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
    assert done.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()
