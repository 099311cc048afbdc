"""Report: what a simulation measured, as data.

Rows are per layer (per Einsum); totals are per run. Values may nest one level (for example
``sram_reads: {ifmap: .., filter: .., ofmap: ..}``) for JSON; ``table()`` flattens them to
``sram_reads_ifmap`` columns for pandas. Every key carries its unit (``_cycles``, ``_bytes``,
``_s``, ``_pj``) or is a dimensionless ratio or count named as such.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def _add_maps(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {**a, **b}}


def _scale_map(a: dict[str, float], n: float) -> dict[str, float]:
    return {k: v * n for k, v in a.items()}


@dataclass(frozen=True)
class Totals:
    """The vocabulary every engine reports in, whatever the hardware kind.

    Why one typed core: sweeps, plots and the CLI read these names for every engine instead of
    one adapter per engine. Per-level and per-unit fields are maps so a kind names its own
    levels (``dram``, ``sram``, ``hbm``, ``bank``, ``link``) and units (``matrix``, ``vector``,
    ``dma``, ``link``, ``compute``, ``memory``). Busy time is in seconds so clockless models (a
    GPU roofline) speak it too; ``total_cycles`` is None there. Totals of operators run one
    after another add (``+``), and a block repeated ``n`` times is ``scaled(n)``: a model of 80
    identical layers is simulated once.
    """

    total_s: float
    total_cycles: float | None
    macs: float = 0.0
    flops: float = 0.0
    # energy per component (mac, sram_read, vector, dram_read, ...); None: the spec gives no number
    energy_pj_by_component: dict[str, float | None] = field(default_factory=dict)
    read_bytes: dict[str, float] = field(default_factory=dict)  # per memory level
    write_bytes: dict[str, float] = field(default_factory=dict)  # per memory level
    offchip_bytes_by_role: dict[str, float] = field(default_factory=dict)  # weight, kv_cache, activation, ...
    busy_s: dict[str, float] = field(default_factory=dict)  # per unit

    def __post_init__(self) -> None:
        for name in ("total_s", "total_cycles"):
            value = getattr(self, name)
            if value is None and name == "total_cycles":
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Totals.{name} must be finite and >= 0, got {value!r}")

    @property
    def utilization(self) -> dict[str, float]:
        """Busy time of each unit over the total (in [0, 1] for a sound engine)."""
        if self.total_s <= 0:
            return {u: 0.0 for u in self.busy_s}
        return {u: b / self.total_s for u, b in self.busy_s.items()}

    @property
    def energy_pj(self) -> float | None:
        """Total energy, or None when any component that did work has no energy number (a partial
        sum would be a silently wrong total; ``energy_known_pj`` and ``energy_unknown`` say what is there)."""
        parts = self.energy_pj_by_component
        if not parts or any(v is None for v in parts.values()):
            return None
        return float(sum(parts.values()))

    @property
    def energy_known_pj(self) -> float:
        return float(sum(v for v in self.energy_pj_by_component.values() if v is not None))

    @property
    def energy_unknown(self) -> list[str]:
        return sorted(k for k, v in self.energy_pj_by_component.items() if v is None)

    @property
    def busy_cycles(self) -> dict[str, float]:
        """Busy cycles per unit (empty for a clockless model)."""
        if self.total_cycles is None or self.total_s <= 0:
            return {}
        hz = self.total_cycles / self.total_s
        return {u: b * hz for u, b in self.busy_s.items()}

    @property
    def dram_bytes(self) -> float:
        return self.read_bytes.get("dram", 0.0) + self.write_bytes.get("dram", 0.0)

    def __add__(self, other: "Totals") -> "Totals":
        a, b = self.energy_pj_by_component, other.energy_pj_by_component
        energy = {k: None if a.get(k, 0.0) is None or b.get(k, 0.0) is None else a.get(k, 0.0) + b.get(k, 0.0)
                  for k in {**a, **b}}
        cycles = None if self.total_cycles is None or other.total_cycles is None else \
            self.total_cycles + other.total_cycles
        return Totals(self.total_s + other.total_s, cycles, self.macs + other.macs, self.flops + other.flops, energy,
                      _add_maps(self.read_bytes, other.read_bytes), _add_maps(self.write_bytes, other.write_bytes),
                      _add_maps(self.offchip_bytes_by_role, other.offchip_bytes_by_role),
                      _add_maps(self.busy_s, other.busy_s))

    def scaled(self, n: float) -> "Totals":
        """The same work run ``n`` times in sequence."""
        return Totals(self.total_s * n, None if self.total_cycles is None else self.total_cycles * n,
                      self.macs * n, self.flops * n,
                      {k: None if v is None else v * n for k, v in self.energy_pj_by_component.items()},
                      _scale_map(self.read_bytes, n), _scale_map(self.write_bytes, n),
                      _scale_map(self.offchip_bytes_by_role, n), _scale_map(self.busy_s, n))

    def flat(self) -> dict[str, float | None]:
        """Flat columns for tables and sweeps: ``read_bytes_dram``, ``utilization_matrix``, ..."""
        out: dict[str, float | None] = {"total_s": self.total_s, "total_cycles": self.total_cycles,
                                        "macs": self.macs, "flops": self.flops, "energy_pj": self.energy_pj,
                                        "energy_known_pj": self.energy_known_pj, "dram_bytes": self.dram_bytes}
        for prefix, values in (("read_bytes", self.read_bytes), ("write_bytes", self.write_bytes),
                               ("offchip_bytes", self.offchip_bytes_by_role), ("busy_s", self.busy_s),
                               ("busy_cycles", self.busy_cycles), ("utilization", self.utilization)):
            for key in sorted(values):
                out[f"{prefix}_{key}"] = values[key]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"total_s": self.total_s, "total_cycles": self.total_cycles, "macs": self.macs,
                "flops": self.flops, "energy_pj": self.energy_pj,
                "energy_pj_by_component": dict(self.energy_pj_by_component), "energy_unknown": self.energy_unknown,
                "read_bytes": dict(self.read_bytes),
                "write_bytes": dict(self.write_bytes), "offchip_bytes_by_role": dict(self.offchip_bytes_by_role),
                "busy_s": dict(self.busy_s), "busy_cycles": self.busy_cycles, "utilization": self.utilization}


@dataclass
class Report:
    """What a simulation measured.

    ``layers`` is the per-operator table (one dict per Einsum run; engines of the interface put
    ``name``, ``op``, ``unit``, ``bound``, ``repeat`` and the core fields in each); ``totals`` the
    run's flat totals; ``core`` the typed vocabulary every engine of ``accelsim.simulate`` fills.
    """

    workload: str
    hardware: str
    layers: list[dict[str, Any]]
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    core: Totals | None = None

    def table(self) -> "pd.DataFrame":
        """One row per layer, nested fields flattened, in the order simulated."""
        import pandas as pd  # lazy: the CLI's start-up must not pay for pandas

        return pd.DataFrame([flatten(row) for row in self.layers])

    def __add__(self, other: "Report") -> "Report":
        """Two reports run one after the other on the same hardware."""
        if self.core is None or other.core is None:
            raise TypeError("only Reports with a typed core add")
        core = self.core + other.core
        totals = {**self.totals, **other.totals, **core.flat()}
        return Report(f"{self.workload}+{other.workload}", self.hardware, [*self.layers, *other.layers], totals,
                      {**self.meta, **other.meta}, core)

    def scaled(self, n: int) -> "Report":
        """This report's work repeated ``n`` times (rows keep their per-run numbers, ``repeat`` grows)."""
        if self.core is None:
            raise TypeError("only Reports with a typed core scale")
        core = self.core.scaled(n)
        rows = [{**row, "repeat": row.get("repeat", 1) * n} for row in self.layers]
        return replace(self, layers=rows, totals={**self.totals, **core.flat()}, core=core)

    def to_dict(self) -> dict[str, Any]:
        out = {"workload": self.workload, "hardware": self.hardware, "meta": self.meta,
               "totals": self.totals, "layers": self.layers}
        if self.core is not None:
            out["core"] = self.core.to_dict()
        return out

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
