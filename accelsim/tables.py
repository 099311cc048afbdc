"""Markdown pipe tables for reports and benchmark outputs, without the optional ``tabulate``.

Why one function: every benchmark writes a ``.md`` table next to its CSV; one formatter keeps
missing values, floats and integers rendered the same way everywhere.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def significant(v: float, digits: int = 4) -> str:
    """Whole floats as integers, others to ``digits`` significant digits."""
    return str(int(v)) if v.is_integer() and abs(v) >= 1 else f"{v:.{digits}g}"


def markdown_table(df: Any, columns: Sequence[str] | None = None,
                   float_format: Callable[[float], str] = significant) -> str:
    """A GitHub-flavoured table of a pandas DataFrame; NaN and None are empty cells."""
    cols = list(columns) if columns is not None else [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return float_format(v)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df[cols].itertuples(index=False)]
    return "\n".join(lines)


def add_output_options(parser: Any, name: str) -> None:
    """The two options every benchmark has: ``--out DIR`` (default: a temporary directory, so a
    run never touches the repository) and ``--write-results`` (also rewrite ``results/<name>.*``)."""
    import tempfile
    from pathlib import Path

    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "accelsim-bench",
                        help=f"directory for {name}.* (default: a temporary directory)")
    parser.add_argument("--write-results", action="store_true",
                        help=f"rewrite the committed results/{name}.* tables")


def primary_output_dir(args: Any, root: Any) -> Any:
    """The one directory a benchmark that writes as it goes (rows flushed per instance) writes to:
    ``<root>/results`` with ``--write-results``, else ``--out``; created."""
    from pathlib import Path

    directory = Path(root) / "results" if args.write_results else Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def output_dirs(args: Any, root: Any) -> list[Any]:
    """Where a benchmark writes: ``--out``, and ``<root>/results`` with ``--write-results``; created."""
    from pathlib import Path

    dirs = [Path(args.out)] + ([Path(root) / "results"] if args.write_results else [])
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs
