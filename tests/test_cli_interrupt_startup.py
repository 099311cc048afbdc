"""Ctrl-C at any moment of start-up is one line and exit status 130, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A meta-path hook that turns the import of one module into a KeyboardInterrupt: exactly what a
# Ctrl-C during that import does, but deterministic.
INTERRUPT_AT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["accelsim", "hardware", "list"]
import runpy
runpy.run_module("accelsim", run_name="__main__")
"""


@pytest.mark.parametrize("module", ["typer", "rich.console", "accelsim.cli.commands.sweep", "pydantic"])
def test_interrupt_while_importing_is_one_line_130(module):
    done = subprocess.run([sys.executable, "-c", INTERRUPT_AT.format(module=module)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "accelsim: interrupted", done.stderr


def test_interrupt_while_loading_commands_in_process(monkeypatch):
    import accelsim.cli
    from accelsim.entry import main
    from tests.cli_helper import cli_in_process

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(accelsim.cli, "_load_commands", interrupted)
    done = cli_in_process("hardware", "list")
    assert done.returncode == 130 and done.stderr.strip() == "accelsim: interrupted", done
    with pytest.raises(SystemExit) as info:
        main(["hardware", "list"])
    assert info.value.code == 130
