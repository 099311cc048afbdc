"""Whole models on spatial presets: the tiling mapper (the default) against the stream-once model.

For each model step and spatial preset, ``accelsim.simulate`` twice: ``mapper="fixed"`` (the
FuseMax artifact's end-to-end GEMM model: every operand read or written once, whatever the
global buffer holds) and the default ``mapper="tiling"`` (``mappers.tiling.spatial`` places each
GEMM: a buffer tile shared by all operands, double buffered, and a DRAM loop order; the engine
counts the refetches that no plan avoids). DRAM bytes, latency, matrix busy cycles and the
simulator's wall time (fastest of ``--repeat``; the machine is shared, so timings are under load).
The stream-once numbers are optimistic wherever they differ: they assume a buffer that is not there.

    python benchmarks/spatial_mapper_vs_stream_once.py [--write-results]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables  # noqa: E402

HARDWARE = ("fusemax-cloud", "flat-cloud", "flat-edge")
# (model, phase, batch, seq or context)
CASES = (("llama-2-7b", "prefill", 1, 512), ("llama-2-7b", "prefill", 1, 4096), ("llama-2-7b", "decode", 1, 2048),
         ("llama-2-7b", "decode", 16, 2048), ("mixtral-8x7b", "prefill", 1, 512),
         ("mixtral-8x7b", "prefill", 1, 4096))


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
        out[f"{mapper}_ms"] = c.total_s * 1e3
        out[f"{mapper}_matrix_Mcycles"] = c.busy_cycles.get("matrix", 0.0) / 1e6
        out[f"{mapper}_energy_J"] = c.energy_pj / 1e12 if c.energy_pj is not None else float("nan")
        out[f"{mapper}_wall_s"] = best
    out["dram_ratio"] = out["tiling_dram_GB"] / out["fixed_dram_GB"]
    out["latency_ratio"] = out["tiling_ms"] / out["fixed_ms"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hardware", default=",".join(HARDWARE), help="comma-separated spatial presets")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest wall time is kept")
    tables.add_output_options(ap, "spatial_mapper_vs_stream_once")
    args = ap.parse_args(argv)
    if args.repeat <= 0:
        ap.error("--repeat must be positive")
    import pandas as pd

    rows = [run_case(*case, hw, args.repeat) for hw in args.hardware.split(",") for case in CASES]
    table = pd.DataFrame(rows)
    cols = ["model", "phase", "batch", "length", "hardware", "fixed_dram_GB", "tiling_dram_GB", "dram_ratio",
            "fixed_ms", "tiling_ms", "latency_ratio", "fixed_matrix_Mcycles", "tiling_matrix_Mcycles",
            "fixed_energy_J", "tiling_energy_J", "fixed_wall_s", "tiling_wall_s"]
    text = ("# Spatial presets: tiling mapper (default) vs the FuseMax stream-once GEMM model\n\n"
            f"Command: `python benchmarks/spatial_mapper_vs_stream_once.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`. length = prompt tokens (prefill) or context "
            "(decode). fixed = every operand streamed once (optimistic when the buffer cannot hold what is "
            "reused); tiling = placed on the shared, double-buffered global buffer. Wall time: fastest of "
            f"{args.repeat}, 1-minute load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared).\n\n"
            + tables.markdown_table(table, cols) + "\n")
    print(text)
    for directory in tables.output_dirs(args, ROOT):
        table[cols].to_csv(directory / "spatial_mapper_vs_stream_once.csv", index=False)
        (directory / "spatial_mapper_vs_stream_once.md").write_text(text)


if __name__ == "__main__":
    main()
