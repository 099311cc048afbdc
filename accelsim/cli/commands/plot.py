"""``accelsim plot roofline|traffic|pareto|timeline|compare``: figures as PNG and SVG.

Data comes from a file (CSV, JSON or YAML; the row shapes are in :mod:`accelsim.plots`), from a
sweep results directory (pareto), or is simulated on the spot from systolic presets (roofline and
traffic with ``--hardware``, on the built-in default example).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from accelsim.cli import group, out
from accelsim.errors import AccelsimError

plot = group("plot", "Draw roofline, traffic, Pareto, timeline and mapping-comparison figures (PNG + SVG).")


def _read_csv(path: Path):  # noqa: ANN202 - a DataFrame
    """A CSV as a DataFrame; a missing file, a directory, an empty or unparsable file is one error."""
    import pandas as pd

    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if not path.is_file():
        raise AccelsimError("not a regular file (a directory?)", source=str(path))
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise AccelsimError("empty CSV file (no header row)", source=str(path)) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise AccelsimError(f"malformed CSV: {str(err).splitlines()[0]}", source=str(path)) from None
    except OSError as err:
        raise AccelsimError(f"cannot read: {err.strerror or err}", source=str(path)) from None


def _read_table(path: Path, key: str | None = None) -> Any:
    if path.suffix.lower() == ".csv":
        return _read_csv(path).to_dict("records")
    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise AccelsimError(f"unsupported file type {path.suffix!r}", source=str(path), allowed=".csv, .json, .yaml")
    from accelsim.yamlio import read_yaml

    data = read_yaml(path)
    if key is not None and isinstance(data, dict):
        if key not in data:
            raise AccelsimError(f"missing top-level key {key!r}", source=str(path))
        return data[key]
    return data


def _saved(paths: list[Path]) -> None:
    out.print("wrote " + ", ".join(str(p) for p in paths), markup=False, highlight=False)


def _default_reports(names: list[str]):  # noqa: ANN202
    """The default example (a BERT-base layer's GEMMs) simulated on each named preset, any kind."""
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate
    from workloads.examples import default_example

    graph = default_example()
    return [simulate(graph, load_hardware(n)) for n in names]


@plot.command("roofline")
def roofline_command(
    data: Path = typer.Argument(None, help="YAML/JSON with 'devices' and 'ops' lists."),
    hardware: list[str] = typer.Option(None, "--hardware", help="Preset(s) of any kind: simulate the default example on each."),
    out_stem: Path = typer.Option(Path("roofline"), "--out", help="Output path without extension."),
) -> None:
    """Device roofs with each operator as a point (marker by phase)."""
    from accelsim import plots

    if data is None and not hardware:
        raise AccelsimError("give a data file or --hardware", field="roofline")
    devices: list[dict] = []
    ops: list[dict] = []
    if data is not None:
        devices += list(_read_table(data, "devices"))
        ops += list(_read_table(data, "ops") or [])
    for report in _default_reports(list(hardware or [])):
        devices += plots.roofs_from_report(report)
        ops += plots.ops_from_report(report, phase="layer")
    _saved(plots.save_figure(plots.roofline_plot(devices, ops), out_stem))


@plot.command("traffic")
def traffic_command(
    data: Path = typer.Argument(None, help="CSV/JSON/YAML rows with level, tensor, bytes."),
    hardware: str = typer.Option(None, "--hardware", help="A preset of any kind: simulate the default example."),
    out_stem: Path = typer.Option(Path("traffic"), "--out", help="Output path without extension."),
) -> None:
    """Bytes moved per memory level, stacked by tensor."""
    from accelsim import plots

    if (data is None) == (hardware is None):
        raise AccelsimError("give exactly one of a data file or --hardware", field="traffic")
    if data is not None:
        rows, title = _read_table(data), f"Memory traffic: {data.name}"
    else:
        (report,) = _default_reports([hardware])
        rows = plots.traffic_from_report(report)
        title = f"Memory traffic by tensor role: {report.workload} on {report.hardware}"
    _saved(plots.save_figure(plots.traffic_plot(rows, title=title), out_stem))


@plot.command("pareto")
def pareto_command(
    directory: Path = typer.Argument(..., help="Sweep results directory (or a CSV table)."),
    x: str = typer.Option(..., "--x", help="Objective on the x axis (minimized)."),
    y: str = typer.Option(..., "--y", help="Objective on the y axis (minimized)."),
    color: str = typer.Option(None, "--color", help="Column shown as colour (not an objective)."),
    group: str = typer.Option(None, "--group", help="One front per value of this column (default: workload, "
                              "when the table has several; 'none' for one front)."),
    maximize: list[str] = typer.Option(None, "--maximize", help="Objectives to maximize instead."),
    label: str = typer.Option(None, "--label", help="Column to annotate front points with."),
    logx: bool = typer.Option(False, "--logx"),
    logy: bool = typer.Option(False, "--logy"),
    out_stem: Path = typer.Option(Path("pareto"), "--out", help="Output path without extension."),
) -> None:
    """Sweep points and their Pareto front."""
    from accelsim import plots
    from accelsim.sweep import load_results

    if directory.suffix.lower() == ".csv":
        df = _read_csv(directory)
    else:
        df = load_results(directory)
        df = df[df["status"] == "ok"]
    if group is None and "workload" in df.columns and df["workload"].nunique() > 1:
        group = "workload"  # points of different workloads are not comparable
    fig = plots.pareto_plot(df, x, y, color, maximize=maximize or (), label=label, logx=logx, logy=logy,
                            group=None if group == "none" else group)
    _saved(plots.save_figure(fig, out_stem))


@plot.command("timeline")
def timeline_command(
    data: Path = typer.Argument(..., help="CSV/JSON/YAML task records: unit, start, end[, label, kind]."),
    bins: int = typer.Option(50, help="Time bins for the utilization curve."),
    time_unit: str = typer.Option("cycles", help="Label of the time axis."),
    out_stem: Path = typer.Option(Path("timeline"), "--out", help="Output path without extension."),
) -> None:
    """Gantt chart of tasks per unit and busy fraction over time."""
    from accelsim import plots
    from accelsim.timeline import records_from_rows

    records = records_from_rows(_read_table(data))
    _saved(plots.save_figure(plots.timeline_plot(records, bins=bins, time_unit=time_unit), out_stem))


@plot.command("compare")
def compare_command(
    data: Path = typer.Argument(..., help="CSV/JSON/YAML rows: one per mapping, metrics as fields."),
    metrics: str = typer.Option(..., help="Comma-separated metric columns."),
    by: str = typer.Option("mapping", help="Column naming each mapping."),
    normalize_to: str = typer.Option(None, help="Divide every metric by this mapping's value."),
    out_stem: Path = typer.Option(Path("compare"), "--out", help="Output path without extension."),
) -> None:
    """Mappings side by side, one panel per metric."""
    from accelsim import plots

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    fig = plots.mapping_comparison_plot(_read_table(data), names, by=by, normalize_to=normalize_to)
    _saved(plots.save_figure(fig, out_stem))
