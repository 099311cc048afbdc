"""Where the published reference tables (``shared/reference``) live on this machine.

Why a lookup instead of a fixed path: the project's checkout sits beside ``shared/`` on every
developer and CI machine, but not always at the same absolute path, and a reproduction test
that silently finds no table would pass without checking anything.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ACCELSIM_SHARED_DIR"  # overrides the search: the folder that holds reference/


def reference_dir(*parts: str) -> Path | None:
    """``shared/reference/<parts>`` if found: $ACCELSIM_SHARED_DIR, then ``../shared`` beside the
    checkout, then ``/work/shared``; None when none of them has it."""
    repo = Path(__file__).resolve().parents[1]
    candidates = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    candidates += [repo.parent / "shared", Path("/work/shared")]
    for shared in candidates:
        path = shared.joinpath("reference", *parts)
        if path.exists():
            return path
    return None
