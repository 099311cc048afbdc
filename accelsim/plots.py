"""Figures for reports, sweeps and notebooks (matplotlib, no pyplot, no windows).

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot state, so nothing
is ever shown and no GUI backend is touched; rendering uses Agg) and returns it; notebooks
display it, ``save_figure`` writes PNG and SVG. Inputs are plain data (lists of dicts,
DataFrames, :class:`accelsim.timeline.TaskRecord`), so any engine can feed them:

- roofline: ``devices`` rows ``{name, peak_flops_per_s, bandwidth_bytes_per_s}``, ``ops`` rows
  ``{name, intensity_flop_per_byte, flops_per_s, phase, device}`` (``flops_per_s`` achieved;
  omitted means "on the roof");
- traffic: rows ``{level, tensor, bytes}``;
- timeline: task records;
- Pareto: a DataFrame and the objective columns;
- mapping comparison: rows ``{mapping, <metric>: value, ...}``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from accelsim.errors import AccelsimError
from accelsim.timeline import TaskRecord, as_records, merged_intervals, utilization_over_time

FORMATS = ("png", "svg")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = FORMATS, dpi: int = 150) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` (parents created); returns the paths."""
    stem = Path(stem)
    if stem.suffix.lower().lstrip(".") in FORMATS:
        stem = stem.with_suffix("")
    paths = []
    path = stem.parent
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        # A fixed hash salt and no date make the SVG the same bytes on every run, so regenerated
        # figures in results/ only show up in a diff when they really changed.
        with matplotlib.rc_context({"svg.hashsalt": "accelsim"}):
            for fmt in formats:
                path = stem.with_suffix(f".{fmt}")
                fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
                paths.append(path)
    except OSError as err:  # a read-only or missing place: the user's path, not our bug
        raise AccelsimError(f"cannot write the figure: {err.strerror or err}", field="--out",
                            source=str(path)) from None
    return paths


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes, for ``IPython.display.Image``: shows the same in a notebook
    whatever matplotlib backend the kernel runs (Agg in CI has no inline display hook)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _rows(data: Any, required: Sequence[str], what: str, numeric: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows as dicts, each with the ``required`` fields; ``numeric`` fields must hold numbers (a
    CSV with text in a number column would otherwise fail deep inside numpy, naming nothing)."""
    if isinstance(data, pd.DataFrame):
        rows = data.to_dict("records")
    else:
        items = [] if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable) else list(data)
        if not items and data or not all(isinstance(r, Mapping) for r in items):
            raise AccelsimError("expected a list of rows (mappings)", field=what, allowed=", ".join(required))
        rows = [dict(r) for r in items]
    for i, row in enumerate(rows):
        missing = [f for f in required if f not in row]
        if missing:
            raise AccelsimError(f"row {i} lacks {missing}", field=what, allowed=", ".join(required))
        for name in numeric:
            value = row[name]
            if hasattr(value, "item") and not isinstance(value, (list, dict)):
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AccelsimError(f"row {i}: {name} must be a number, got {value!r}", field=f"{what}.{name}")
    return rows


# --- Pareto ----------------------------------------------------------------------------------
def pareto_front(values: Any, columns: Sequence[str] | None = None,
                 maximize: Sequence[str] | Sequence[bool] = ()) -> np.ndarray:
    """Boolean mask of the non-dominated rows (all objectives minimized unless in ``maximize``).

    Row ``a`` dominates ``b`` when it is no worse in every objective and better in one; equal
    rows do not dominate each other, so duplicates on the front are all kept. Rows with NaN in
    an objective are never on the front.

    Algorithm (sort-filter): sorted lexicographically, a row can only be dominated by a row
    before it, and if it is dominated at all then some *front* row dominates it (dominance is
    transitive), so each row is compared with the front found so far only. The tests check it
    against the O(n^2) definition.
    """
    if isinstance(values, pd.DataFrame):
        if columns is None:
            raise AccelsimError("name the objective columns", field="columns", allowed=list(values.columns))
        missing = [c for c in columns if c not in values.columns]
        if missing:
            raise AccelsimError(f"unknown column {missing[0]!r}", field="columns", allowed=list(values.columns))
        flip = [c in maximize for c in columns]
        arr = values[list(columns)].to_numpy(dtype=float)
    else:
        arr = np.asarray(values, dtype=float)
        if arr.ndim != 2:
            raise AccelsimError(f"expected a 2-D array of objectives, got shape {arr.shape}", field="values")
        flip = list(maximize) if maximize else [False] * arr.shape[1]
    arr = np.where(np.asarray(flip, dtype=bool)[None, :], -arr, arr) if arr.size else arr
    mask = np.zeros(len(arr), dtype=bool)
    valid = ~np.isnan(arr).any(axis=1) if arr.size else np.zeros(0, dtype=bool)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return mask
    order = idx[np.lexsort(arr[idx].T[::-1])]
    front: list[int] = []
    front_vals = np.empty((0, arr.shape[1]))
    for i in order:
        v = arr[i]
        if front:
            dominated = np.all(front_vals <= v, axis=1) & np.any(front_vals < v, axis=1)
            if dominated.any():
                continue
        front.append(i)
        front_vals = np.vstack([front_vals, v])
    mask[front] = True
    return mask


def pareto_plot(df: pd.DataFrame, x: str, y: str, color: str | None = None, *, maximize: Sequence[str] = (),
                label: str | None = None, logx: bool = False, logy: bool = False, title: str | None = None,
                group: str | None = None) -> Figure:
    """All points and the Pareto front over (x, y), one front per ``group`` value (points of
    different workloads are not comparable); ``color`` only colours the points, it is not a third
    objective."""
    for col in (x, y, *([color] if color else [])):
        if col not in df.columns:
            raise AccelsimError(f"unknown column {col!r}", field="pareto", allowed=list(df.columns))
        if not (pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])):
            raise AccelsimError(f"column {col!r} is not numeric (dtype {df[col].dtype})", field="pareto")
    if group is not None and group not in df.columns:
        raise AccelsimError(f"unknown column {group!r}", field="group", allowed=list(df.columns))
    data = df.dropna(subset=[x, y])
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    kw: dict[str, Any] = {}
    if color:
        kw = {"c": data[color], "cmap": "viridis"}
    sc = ax.scatter(data[x], data[y], s=14, alpha=0.45, label="design points", **kw)
    if color:
        fig.colorbar(sc, ax=ax, label=color)
    groups = [(None, data)] if group is None else list(data.groupby(group, sort=True))
    for i, (name, part) in enumerate(groups):
        front = part[pareto_front(part, [x, y], maximize=maximize)].sort_values(x)
        edge = "red" if group is None else f"C{i % 10}"
        what = f"Pareto front ({len(front)})" if group is None else f"front {group}={name} ({len(front)})"
        ax.scatter(front[x], front[y], s=40, facecolors="none", edgecolors=edge, linewidths=1.4, label=what)
        ax.step(front[x], front[y], where="post", color=edge, linewidth=1, alpha=0.7)
        if label:
            for _, row in front.iterrows():
                ax.annotate(str(row[label]), (row[x], row[y]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(title or f"Pareto front: {x}, {y}" + (f" per {group}" if group else ""))
    ax.grid(alpha=0.3)
    return fig


# --- roofline -----------------------------------------------------------------------------
def roofline_plot(devices: Iterable[Mapping[str, Any]], ops: Iterable[Mapping[str, Any]] = (),
                  title: str = "Roofline", annotate: bool | None = None) -> Figure:
    """Log-log roofline: one roof per device, each operator a point, marker by phase.

    Operator names are written next to their points when there are few (``annotate`` None: at
    most 16 operators) or when asked."""
    devs = _rows(devices, ("name", "peak_flops_per_s", "bandwidth_bytes_per_s"), "roofline devices",
                 numeric=("peak_flops_per_s", "bandwidth_bytes_per_s"))
    op_rows = _rows(ops, ("name", "intensity_flop_per_byte"), "roofline ops", numeric=("intensity_flop_per_byte",))
    if not devs:
        raise AccelsimError("needs at least one device", field="roofline devices")
    by_name = {d["name"]: d for d in devs}
    annotate = len(op_rows) <= 16 if annotate is None else annotate
    intensities = [float(o["intensity_flop_per_byte"]) for o in op_rows] or [1.0]
    ridges = [d["peak_flops_per_s"] / d["bandwidth_bytes_per_s"] for d in devs]
    lo = min(min(intensities), min(ridges)) / 8
    hi = max(max(intensities), max(ridges)) * 8
    xs = np.geomspace(lo, hi, 256)
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    colors = {}
    for i, d in enumerate(devs):
        line, = ax.plot(xs, np.minimum(d["peak_flops_per_s"], xs * d["bandwidth_bytes_per_s"]),
                        label=f"{d['name']} roof", linewidth=1.6)
        colors[d["name"]] = line.get_color()
    phases = sorted({str(o.get("phase", "")) for o in op_rows})
    for j, phase in enumerate(phases):
        for o in (o for o in op_rows if str(o.get("phase", "")) == phase):
            dev = o.get("device") or devs[0]["name"]
            if dev not in by_name:
                raise AccelsimError(f"op {o['name']!r} names unknown device {dev!r}", field="roofline ops",
                                    allowed=list(by_name))
            x = float(o["intensity_flop_per_byte"])
            d = by_name[dev]
            y = o.get("flops_per_s")
            y = float(y) if y is not None and not pd.isna(y) else min(d["peak_flops_per_s"], x * d["bandwidth_bytes_per_s"])
            ax.scatter([x], [y], marker=MARKERS[j % len(MARKERS)], color=colors[dev], s=30, zorder=3)
            if annotate:
                ax.annotate(str(o["name"]), (x, y), fontsize=6, xytext=(3, -8), textcoords="offset points")
    for j, phase in enumerate(phases):
        ax.scatter([], [], marker=MARKERS[j % len(MARKERS)], color="gray", label=f"phase: {phase or 'n/a'}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("attainable FLOP / s")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def roofs_from_report(report: Any) -> list[dict[str, Any]]:
    """One roof per unit or datatype the report's operators ran on (matrix and vector units of an
    accelerator, a GPU's peak per datatype and its vector rate), all under the report's DRAM
    bandwidth. Every engine of ``accelsim.simulate`` puts ``roof`` and ``peak_flops_per_s`` in its
    rows and ``dram_bytes_per_s`` in its totals, so this serves every kind."""
    bandwidth = report.totals["dram_bytes_per_s"]
    roofs: dict[str, float] = {}
    for row in report.layers:
        if row.get("flops") and row.get("peak_flops_per_s"):
            roofs[row["roof"]] = row["peak_flops_per_s"]
    return [{"name": f"{report.hardware} {roof}", "peak_flops_per_s": peak, "bandwidth_bytes_per_s": bandwidth}
            for roof, peak in sorted(roofs.items())]


def ops_from_report(report: Any, phase: str = "", min_flops: float = 1.0) -> list[dict[str, Any]]:
    """Roofline points, one per operator: DRAM intensity and achieved FLOP/s over the operator's
    own time, placed under the roof of the unit it ran on. Data movement and collectives (no
    FLOPs) and operators that touch no DRAM (infinite intensity) have no place on log axes and
    are left out."""
    ops = []
    for row in report.layers:
        if row.get("flops", 0.0) < min_flops or not row.get("total_s") or not row.get("dram_bytes"):
            continue
        ops.append({"name": row["name"], "intensity_flop_per_byte": row["flops"] / row["dram_bytes"],
                    "flops_per_s": row["flops"] / row["total_s"], "phase": phase,
                    "device": f"{report.hardware} {row['roof']}"})
    return ops


# --- memory traffic ------------------------------------------------------------------------------
def traffic_plot(traffic: Any, title: str = "Memory traffic") -> Figure:
    """Stacked bars: one bar per memory level, one segment per tensor (bytes)."""
    rows = _rows(traffic, ("level", "tensor", "bytes"), "traffic", numeric=("bytes",))
    if not rows:
        raise AccelsimError("no traffic rows", field="traffic")
    df = pd.DataFrame(rows).groupby(["level", "tensor"], sort=False)["bytes"].sum().unstack(fill_value=0)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    bottom = np.zeros(len(df.index))
    for tensor in df.columns:
        ax.bar(df.index.astype(str), df[tensor].to_numpy(), bottom=bottom, label=str(tensor))
        bottom += df[tensor].to_numpy()
    for i, total in enumerate(bottom):
        ax.annotate(_human_bytes(total), (i, total), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("bytes")
    ax.set_title(title)
    ax.legend(fontsize=7, title="tensor")
    ax.grid(alpha=0.3, axis="y")
    return fig


def traffic_from_report(report: Any, level: str = "dram") -> list[dict[str, Any]]:
    """Long-form traffic from any engine's Report core: off-chip bytes per tensor role."""
    return [{"level": level, "tensor": role, "bytes": b}
            for role, b in sorted(report.core.offchip_bytes_by_role.items()) if b]


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} TiB"


# --- timeline -----------------------------------------------------------------------------
def timeline_plot(records: Sequence[TaskRecord], bins: int = 50, title: str = "Utilization over time",
                  time_unit: str = "cycles") -> Figure:
    """Top: a Gantt chart of tasks per unit (colour by kind). Bottom: busy fraction per unit per bin.

    ``records``: TaskRecords, dicts, or an engine's task objects (see ``accelsim.timeline.as_records``)."""
    records = as_records(records)
    edges, util = utilization_over_time(records, bins)
    units = sorted(util)
    kinds = sorted({r.kind for r in records})
    fig = Figure(figsize=(8, 2 + 0.45 * len(units) + 2.5))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [max(1, len(units)), 2]})
    palette = {k: f"C{i % 10}" for i, k in enumerate(kinds)}
    for y, unit in enumerate(units):
        spans = [(r.start, r.duration, palette[r.kind]) for r in records if r.unit == unit]
        ax.broken_barh([(s, d) for s, d, _ in spans], (y - 0.4, 0.8), facecolors=[c for _, _, c in spans],
                       edgecolor="black", linewidth=0.3)
    for kind, color in palette.items():
        ax.bar([0], [0], color=color, label=kind or "task")
    ax.set_yticks(range(len(units)), units)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    for unit in units:
        ax2.stairs(util[unit], edges, label=unit, linewidth=1.4)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("busy fraction")
    ax2.set_xlabel(f"time ({time_unit})")
    ax2.legend(fontsize=7, ncol=min(4, len(units)))
    ax2.grid(alpha=0.3)
    return fig


def busy_summary(records: Sequence[TaskRecord]) -> pd.DataFrame:
    """Per unit: busy time, span of the whole run, utilization (busy / span)."""
    records = as_records(records)
    if not records:
        raise AccelsimError("no task records", field="timeline")
    span = max(r.end for r in records) - min(r.start for r in records)
    merged = merged_intervals(records)
    rows = [{"unit": u, "busy": sum(e - s for s, e in v), "tasks": sum(r.unit == u for r in records)}
            for u, v in sorted(merged.items())]
    df = pd.DataFrame(rows)
    df["utilization"] = df["busy"] / span if span > 0 else 0.0
    return df


# --- mapping comparison ---------------------------------------------------------------------
def mapping_comparison_plot(table: Any, metrics: Sequence[str], by: str = "mapping",
                            title: str = "Mappings compared", normalize_to: str | None = None) -> Figure:
    """One panel per metric, one bar per mapping; ``normalize_to`` divides by that mapping's value."""
    df = pd.DataFrame(_rows(table, (by, *metrics), "mapping comparison", numeric=metrics))
    if normalize_to is not None:
        if normalize_to not in set(df[by]):
            raise AccelsimError(f"no row {by} = {normalize_to!r}", field="normalize_to", allowed=list(df[by]))
        base = df[df[by] == normalize_to].iloc[0]
        zero = [m for m in metrics if not base[m]]
        if zero:  # dividing by zero would draw an empty panel
            raise AccelsimError(f"the baseline {normalize_to!r} is 0 in {zero}; nothing can be normalized to it",
                                field="normalize_to", allowed=[str(v) for v in df[by] if v != normalize_to])
        for m in metrics:
            df[m] = df[m] / base[m]
    fig = Figure(figsize=(3.2 * len(metrics), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, m in zip(axes, metrics):
        bars = ax.bar(df[by].astype(str), df[m], color=[f"C{i % 10}" for i in range(len(df))])
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_title(m + (f" (vs {normalize_to})" if normalize_to else ""), fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    return fig
