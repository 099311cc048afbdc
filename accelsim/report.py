"""Report: what a simulation measured, as data.

Rows are per layer (per Einsum); totals are per run. Values may nest one level (for example
``sram_reads: {ifmap: .., filter: .., ofmap: ..}``) for JSON; ``table()`` flattens them to
``sram_reads_ifmap`` columns for pandas. Every key carries its unit (``_cycles``, ``_bytes``,
``_s``, ``_pj``) or is a dimensionless ratio or count named as such.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


@dataclass
class Report:
    workload: str
    hardware: str
    layers: list[dict[str, Any]]
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per layer, nested fields flattened, in the order simulated."""
        return pd.DataFrame([flatten(row) for row in self.layers])

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "hardware": self.hardware, "meta": self.meta,
                "totals": self.totals, "layers": self.layers}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable)

    def to_csv(self, path: str | Path | None = None) -> str:
        text = self.table().to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
