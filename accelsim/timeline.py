"""Task records from an event-driven engine, and the utilization they imply.

Why a tiny shared record: the discrete-event engines (simpy composition, FuseMax's pipeline)
know when each unit was busy; the plots and reports only need ``(unit, start, end)``. An engine
that appends ``TaskRecord``s to a list gets the utilization timeline and busy totals for free,
without the plotting code knowing anything about the engine.

Times are in whatever unit the engine uses (cycles or seconds); every function here keeps it.
A unit running overlapping tasks (e.g. two DMA streams on one channel) is busy once, not twice:
intervals are merged per unit before anything is measured.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError


@dataclass(frozen=True)
class TaskRecord:
    """One task on one unit: busy from ``start`` to ``end`` (end exclusive)."""

    unit: str
    start: float
    end: float
    label: str = ""
    kind: str = ""  # free text such as compute, dma, stall; plots colour by it

    def __post_init__(self) -> None:
        if not self.end >= self.start:
            raise AccelsimError(f"task ends ({self.end}) before it starts ({self.start})",
                                field=f"task record {self.label or self.unit}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def records_from_rows(rows: Iterable[dict[str, Any]]) -> list[TaskRecord]:
    """Records from plain dicts (a CSV or JSON file), naming the missing field if any."""
    out = []
    for i, row in enumerate(rows):
        missing = [f for f in ("unit", "start", "end") if f not in row]
        if missing:
            raise AccelsimError(f"record {i} lacks {missing}", field="timeline", allowed="unit, start, end, label, kind")
        out.append(TaskRecord(str(row["unit"]), float(row["start"]), float(row["end"]),
                              str(row.get("label") or ""), str(row.get("kind") or "")))
    return out


def as_records(items: Iterable[Any]) -> list[TaskRecord]:
    """TaskRecords from records, dicts, or any task objects with ``unit``, ``start`` and ``end``
    attributes (``name``/``label`` and ``kind`` optional), such as the tasks a simpy engine keeps
    after running (for example ``accelsim.engines.events.Task``). Tasks that never ran (no start
    or end) are left out. Duck-typed on purpose: engines need not import this module."""
    out: list[TaskRecord] = []
    rows: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, TaskRecord):
            out.append(item)
        elif isinstance(item, dict):
            rows.append(item)
        else:
            start, end = getattr(item, "start", None), getattr(item, "end", None)
            if start is None or end is None:
                continue
            label = getattr(item, "label", None) or getattr(item, "name", "") or ""
            out.append(TaskRecord(str(item.unit), float(start), float(end), str(label),
                                  str(getattr(item, "kind", "") or "")))
    return out + records_from_rows(rows)


def merged_intervals(records: Iterable[TaskRecord]) -> dict[str, list[tuple[float, float]]]:
    """Per unit, the union of its busy intervals as sorted, disjoint (start, end) pairs."""
    by_unit: dict[str, list[tuple[float, float]]] = {}
    for r in as_records(records):
        if r.end > r.start:
            by_unit.setdefault(r.unit, []).append((r.start, r.end))
        else:
            by_unit.setdefault(r.unit, [])
    merged: dict[str, list[tuple[float, float]]] = {}
    for unit, spans in by_unit.items():
        spans.sort()
        out: list[tuple[float, float]] = []
        for s, e in spans:
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        merged[unit] = out
    return merged


def busy_time(records: Iterable[TaskRecord]) -> dict[str, float]:
    """Time each unit was busy (overlapping tasks on a unit counted once)."""
    return {unit: sum(e - s for s, e in spans) for unit, spans in merged_intervals(records).items()}


def utilization_over_time(records: Sequence[TaskRecord], bins: int | Sequence[float] = 50,
                          units: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bin edges and, per unit, the busy fraction of each bin.

    ``bins`` is a bin count over [earliest start, latest end] or explicit increasing edges.
    The fraction is exact: the overlap of each merged interval with each bin, divided by the
    bin's width (computed with cumulative busy time at the edges, no sampling).
    """
    records = as_records(records)
    if not records:
        raise AccelsimError("no task records", field="timeline")
    if isinstance(bins, int):
        if bins < 1:
            raise AccelsimError(f"must be at least 1, got {bins}", field="bins")
        lo = min(r.start for r in records)
        hi = max(r.end for r in records)
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise AccelsimError("bin edges must be at least two increasing numbers", field="bins")
    merged = merged_intervals(records)
    names = list(units) if units is not None else sorted(merged)
    width = np.diff(edges)
    out: dict[str, np.ndarray] = {}
    for unit in names:
        spans = merged.get(unit, [])
        out[unit] = np.diff(_cumulative_busy(spans, edges)) / width
    return edges, out


def _cumulative_busy(spans: list[tuple[float, float]], at: np.ndarray) -> np.ndarray:
    """Busy time in (-inf, t] for each t, from disjoint sorted spans."""
    if not spans:
        return np.zeros_like(at)
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    # each span contributes clip(t - start, 0, length)
    return np.clip(at[:, None] - starts[None, :], 0.0, (ends - starts)[None, :]).sum(axis=1)
