"""``accelsim map cosma``: optimal schedule, scratchpad allocation and replacement for a workload."""
from __future__ import annotations

import re

import typer

from accelsim.cli import err, group, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

mapping_group = group("map", "Map workloads onto hardware with an optimizer.")

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
BUDGET_NAMES = ("M_R", "M_H", "M_P")


def parse_size(text: str) -> int:
    """``200``, ``64KiB``, ``1.5MB`` -> bytes (decimal kB/MB/GB, binary KiB/MiB/GiB)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise AccelsimError(f"cannot read size {text!r}", field="--scratchpad",
                            allowed="a byte count like 200, 64KiB, 1.5MB, or M_R, M_H, M_P")
    value = float(m.group(1)) * _UNITS[unit]
    if value < 1 or value != int(value):
        raise AccelsimError(f"size {text!r} is not a positive whole number of bytes", field="--scratchpad")
    return int(value)


def load_workload(name: str):
    """A CNN/NAS network by name, or one prefill block of a zoo transformer (sequence 512)."""
    from workloads.cnn import NETWORKS, build_network

    if name in NETWORKS:
        return build_network(name)
    from workloads.config import zoo_names
    from workloads.models import load_model

    if name in zoo_names():
        from workloads.transformer import build_block

        return build_block(load_model(name), "prefill", seq=512)
    raise AccelsimError(f"unknown workload {name!r}", field="--model", allowed=[*NETWORKS, *zoo_names()])


@mapping_group.command("cosma")
def cosma_command(
    workload: str = typer.Option(..., "--model", "--workload", help="CNN/NAS network or zoo transformer (one prefill block)."),
    scratchpad: str = typer.Option(..., "--scratchpad", help="Capacity: bytes (200, 64KiB, 1.5MB) or M_R, M_H, M_P."),
    with_weights: bool = typer.Option(False, "--with-weights", help="Weights also live in the scratchpad."),
    solver: str = typer.Option("cpsat", "--solver", help="cpsat, highs or cbc."),
    time_limit: float = typer.Option(60.0, "--time-limit", help="Solver time limit in seconds."),
    baselines: bool = typer.Option(False, "--baselines", help="Also report the four baselines."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    save: str = typer.Option(None, "--save", help="Write the Mapping to this YAML/JSON file."),
    divide: int = typer.Option(0, "--divide", help="Divide and conquer: operators per piece (0 = one ILP)."),
    hardware: str = typer.Option(None, "--hardware", help="Systolic preset for a cycle estimate of the mapping."),
) -> None:
    """Minimise non-compulsory off-chip bytes with the COSMA ILP (warm-started from the best baseline)."""
    import math

    from mappers.cosma import budgets
    from mappers.cosma_entry import cosma_map
    from mappers.memory_problem import MemoryProblem
    from mappers.milp import SOLVERS

    if solver not in SOLVERS:
        raise AccelsimError(f"unknown solver {solver!r}", field="--solver", allowed=SOLVERS)
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise AccelsimError(f"must be a positive, finite number of seconds, got {time_limit}", field="--time-limit")
    if divide < 0:
        raise AccelsimError(f"must be 0 (one ILP) or a positive number of operators, got {divide}", field="--divide")
    if save:
        from accelsim.outputs import check_output_file

        check_output_file(save, "--save")  # before the solve, not after it
    graph = load_workload(workload)
    problem = MemoryProblem.from_graph(graph, with_weights)
    budget = None
    min_peak_order = None
    if scratchpad.upper() in BUDGET_NAMES:
        key = scratchpad.upper()
        with err.status(f"computing the budgets of {graph.name} (minimum-peak ILP, up to {time_limit:g} s) ..."):
            b = budgets(problem, solver=solver, time_limit_s=time_limit)
        capacity, budget, min_peak_order = b[key], {k: b[k] for k in BUDGET_NAMES}, b["min_peak_order"]
    else:
        capacity = parse_size(scratchpad)
    with err.status(f"solving COSMA for {graph.name} ({len(graph)} operators, up to {time_limit:g} s a solve) ..."):
        result, base = cosma_map(graph, capacity, with_weights=with_weights, divide_ops=divide,
                                 min_peak_order=min_peak_order, solver=solver, time_limit_s=time_limit)
    from accelsim.engines.scratchpad import replay

    hw = None
    if hardware:
        from accelsim.hardware import load_hardware

        hw = load_hardware(hardware, kind="systolic")
    replayed = replay(graph, result.mapping, capacity, with_weights, hw)
    if replayed.non_compulsory_bytes != result.non_compulsory_bytes:  # a bug, never a user error
        raise RuntimeError(f"replay counts {replayed.non_compulsory_bytes} B, mapper {result.non_compulsory_bytes} B")
    if save:
        result.mapping.save(save)
    report = {
        "workload": graph.name, "scratchpad_bytes": capacity, "with_weights": with_weights,
        "non_compulsory_bytes": result.non_compulsory_bytes, "compulsory_bytes": problem.compulsory_bytes,
        "status": result.status, "gap": result.gap, "best_bound_bytes": result.best_bound,
        "solver": result.solver, "solve_s": round(result.solve_s, 3), "schedule": result.schedule,
    }
    if budget:
        report["budgets_bytes"] = budget
    if hw is not None:
        report.update({"hardware": hw.name, "total_cycles": replayed.total_cycles,
                       "compute_cycles": replayed.compute_cycles, "dma_cycles": replayed.dma_cycles})
    if baselines:
        report["baselines"] = {r.name: {"non_compulsory_bytes": r.non_compulsory_bytes} for r in base}
    if as_json:
        out.print(dumps_json(report, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    out.print(f"{graph.name}: scratchpad {capacity} B ({'activations + weights' if with_weights else 'activations'})",
              markup=False, highlight=False)
    gap = "n/a" if result.gap is None else f"{100 * result.gap:.2f}%"
    bound = "n/a" if result.best_bound is None else f"{result.best_bound:.0f}"
    out.print(f"  COSMA: {result.non_compulsory_bytes} non-compulsory bytes, {result.status} (lower bound "
              f"{bound} B, gap {gap}), "
              f"{result.solver}, {result.solve_s:.2f} s", markup=False, highlight=False)
    if hw is not None:
        out.print(f"  on {hw.name}: {replayed.total_cycles:.0f} cycles (sums: {replayed.compute_cycles:.0f} compute, "
                  f"{replayed.dma_cycles:.0f} DMA; spills and stores overlap compute)", markup=False, highlight=False)
    if baselines:
        for r in base:
            out.print(f"  {r.name:<18} {r.non_compulsory_bytes} bytes", markup=False, highlight=False)
    if save:
        err.print(f"mapping written to {save}", markup=False, highlight=False)
