"""The ``accelsim`` console script and ``python -m accelsim``: a Ctrl-C at any moment is one line.

Why a module of its own: importing the CLI (typer, rich, every command module) takes a noticeable
fraction of a second, and a Ctrl-C during those imports used to print a KeyboardInterrupt
traceback, because it arrived before the CLI's own handler was in place. This module imports
nothing heavy, so the handler below is active from the first line the package runs.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    try:
        from accelsim.cli import main as cli_main

        cli_main(argv)
    except KeyboardInterrupt:
        try:
            sys.stderr.write("accelsim: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError, KeyboardInterrupt):
            pass
        sys.exit(130)


if __name__ == "__main__":
    main()
