"""Whole models on systolic presets: the tiling mapper (the default) against SCALE-Sim's fold order.

For each zoo model step and systolic preset, ``accelsim.simulate`` twice: ``mapper="fixed"``
(every GEMM in SCALE-Sim's fold order, ``simulate_gemm``) and the default ``mapper="tiling"``
(``mappers.tiling.systolic`` places each GEMM: SRAM tiles, loop order and the use of the array's
edges, or keeps the fold order where no loop nest beats it). DRAM bytes, total cycles, matrix
busy cycles, how many GEMM rows each placement took, and the simulator's wall time (fastest of
``--repeat``; the machine is shared, so timings are under load).

    python benchmarks/systolic_mapper_vs_fold_order.py [--write-results]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables

HARDWARE = ("tpu-v1", "tpu-v4", "edge-npu", "scalesim-google")
# (model, phase, batch, seq or context)
CASES = (("llama-2-7b", "decode", 1, 2048), ("llama-2-7b", "prefill", 1, 512), ("llama-2-7b", "prefill", 1, 4096),
         ("llama-2-70b", "decode", 1, 2048), ("mixtral-8x7b", "decode", 16, 2048), ("bert-base", "prefill", 8, 512))


def run_case(model: str, phase: str, batch: int, length: int, hardware: str, repeat: int) -> dict:
    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    sizes = {"seq": length} if phase == "prefill" else {"context": length}
    workload = build_model(load_model(model), phase, batch=batch, **sizes)
    out: dict = {"model": model, "phase": phase, "batch": batch, "length": length, "hardware": hardware}
    for mapper in ("fixed", "tiling"):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            report = simulate(workload, hardware, mapper=mapper)
            best = min(best, time.perf_counter() - t0)
        c = report.core
        out[f"{mapper}_dram_GB"] = c.dram_bytes / 1e9
        out[f"{mapper}_Mcycles"] = c.total_cycles / 1e6
        out[f"{mapper}_matrix_Mcycles"] = c.busy_cycles.get("matrix", 0.0) / 1e6
        out[f"{mapper}_wall_s"] = best
        if mapper == "tiling":
            placed = report.meta["gemm_mapper"]["placed"]
            out["rows_tiling"] = placed.get("tiling", 0)
            out["rows_fold"] = sum(v for k, v in placed.items() if k != "tiling")
    out["dram_ratio"] = out["tiling_dram_GB"] / out["fixed_dram_GB"]
    out["cycles_ratio"] = out["tiling_Mcycles"] / out["fixed_Mcycles"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hardware", default=",".join(HARDWARE), help="comma-separated systolic presets")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest wall time is kept")
    tables.add_output_options(ap, "systolic_mapper_vs_fold_order")
    args = ap.parse_args(argv)
    if args.repeat <= 0:
        ap.error("--repeat must be positive")
    import pandas as pd

    rows = [run_case(*case, hw, args.repeat) for hw in args.hardware.split(",") for case in CASES]
    table = pd.DataFrame(rows)
    cols = ["model", "phase", "batch", "length", "hardware", "fixed_dram_GB", "tiling_dram_GB", "dram_ratio",
            "fixed_Mcycles", "tiling_Mcycles", "cycles_ratio", "fixed_matrix_Mcycles", "tiling_matrix_Mcycles",
            "rows_tiling", "rows_fold", "fixed_wall_s", "tiling_wall_s"]
    text = ("# Systolic presets: tiling mapper (default) vs SCALE-Sim's fold order\n\n"
            f"Command: `python benchmarks/systolic_mapper_vs_fold_order.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`. length = prompt tokens (prefill) or context "
            f"(decode). rows_*: matrix rows (distinct GEMM operators) each placement took. Wall time: fastest of "
            f"{args.repeat}, 1-minute load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared).\n\n"
            + tables.markdown_table(table, cols) + "\n")
    print(text)
    for directory in tables.output_dirs(args, ROOT):
        table[cols].to_csv(directory / "systolic_mapper_vs_fold_order.csv", index=False)
        (directory / "systolic_mapper_vs_fold_order.md").write_text(text)


if __name__ == "__main__":
    main()
