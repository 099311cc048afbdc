"""Rich rendering of a systolic-engine Report for the terminal (CLI only; library code never prints)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from accelsim.report import Report


def _num(v: float) -> str:
    """Compact count: 14.16M, 589.8k, 812."""
    v = float(v)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.4g}{suffix}"
    return f"{v:.4g}"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, header_style="bold")
    for name in columns:
        table.add_column(name, justify="left" if name == "layer" else "right")
    return table


def systolic_tables(report: Report) -> tuple[Table, Table]:
    """Two narrow tables (they fit an 80-column terminal): cycles, and memory accesses."""
    head = f"{report.workload} on {report.hardware} ({report.meta.get('dataflow', '?')})"
    cycles = _table(f"{head}: cycles", ["layer", "M", "K", "N", "compute", "stall", "total", "util", "map eff"])
    memory = _table("memory accesses: SRAM in words, DRAM in bytes",
                    ["layer", "SRAM rd ifmap", "rd filter", "rd ofmap", "wr ofmap", "DRAM ifmap", "filter", "ofmap"])
    rows = [(str(r["layer"]), r, True) for r in report.layers] + [("total", report.totals, False)]
    widest = min(28, max(len(label) for label, _, _ in rows))
    for table in (cycles, memory):
        table.columns[0].min_width = widest
    for i, (label, row, dims) in enumerate(rows):
        if not dims:
            cycles.add_section()
            memory.add_section()
        style = None if dims else "bold"
        cycles.add_row(label, *([_num(row["m"]), _num(row["k"]), _num(row["n"])] if dims else ["", "", ""]),
                       _num(row["compute_cycles"]), _num(row["stall_cycles"]), _num(row["total_cycles"]),
                       _pct(row["overall_utilization"]), _pct(row["mapping_efficiency"]), style=style)
        reads, dram = row["sram_reads"], row["dram_bytes"]
        memory.add_row(label, _num(reads["ifmap"]), _num(reads["filter"]), _num(reads["ofmap"]),
                       _num(row["sram_writes"]["ofmap"]), _num(dram["ifmap"]), _num(dram["filter"]),
                       _num(dram["ofmap"]), style=style)
    return cycles, memory


def print_systolic_report(report: Report, console: Console) -> None:
    for table in systolic_tables(report):
        console.print(table)
    t = report.totals
    line = (f"total {t['total_cycles']:,} cycles ({t['compute_cycles']:,} compute + {t['stall_cycles']:,} stall)"
            f", {t['total_s'] * 1e3:.3f} ms, {t['macs'] / 1e9:.2f} GMAC, utilization {100 * t['overall_utilization']:.1f}%")
    if "energy_pj" in t:
        line += f", energy {t['energy_pj'] / 1e6:.3f} uJ"
    console.print(line, highlight=False)
    skipped = report.meta.get("not_mapped") or []
    if skipped:
        console.print(f"not mapped to the array: {', '.join(s['einsum'] for s in skipped)}", highlight=False)
