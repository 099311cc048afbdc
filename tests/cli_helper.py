"""Run the accelsim CLI in-process (fast) and capture what a subprocess would see."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def cli_in_process(*args: str) -> Done:
    from accelsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return Done(code, out.getvalue(), err.getvalue())


def one_line_error(done, *needles):
    """The CLI's contract for bad input: exit 2, exactly one line on stderr, no traceback, naming
    every needle."""
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
