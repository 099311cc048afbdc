"""Whole models: the tiling mapper (the default GEMM placement) against each kind's fixed GEMM model.

For each model step and preset, ``accelsim.simulate`` twice: ``mapper="fixed"`` and the default
``mapper="tiling"``. The fixed model is, per kind:

- systolic: every GEMM in SCALE-Sim's fold order (``simulate_gemm``); the mapper
  (``mappers.tiling.systolic``) chooses SRAM tiles, loop order and the use of the array's edges,
  or keeps the fold order where no loop nest beats it;
- spatial: the FuseMax artifact's end-to-end model, every operand read or written once whatever
  the global buffer holds (optimistic wherever it differs: it assumes a buffer that is not there);
  the mapper (``mappers.tiling.spatial``) places a buffer tile shared by all operands, double
  buffered, and a DRAM loop order, and the engine counts the refetches no plan avoids.

DRAM bytes, latency, total and matrix busy cycles, energy, how many GEMM rows each placement took,
and the simulator's wall time (fastest of ``--repeat``; the machine may be shared, so the load is
recorded). One table per kind: ``systolic_mapper_vs_fold_order.*`` and
``spatial_mapper_vs_stream_once.*``.

    python benchmarks/gemm_mapper_vs_fixed.py [--kind systolic,spatial] [--repeat N] [--write-results]
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

# kind -> (presets, (model, phase, batch, seq or context) cases, results stem, title of the fixed model)
KINDS = {
    "systolic": (("tpu-v1", "tpu-v4", "edge-npu", "scalesim-google"),
                 (("llama-2-7b", "decode", 1, 2048), ("llama-2-7b", "prefill", 1, 512),
                  ("llama-2-7b", "prefill", 1, 4096), ("llama-2-70b", "decode", 1, 2048),
                  ("mixtral-8x7b", "decode", 16, 2048), ("bert-base", "prefill", 8, 512)),
                 "systolic_mapper_vs_fold_order", "SCALE-Sim's fold order"),
    "spatial": (("fusemax-cloud", "flat-cloud", "flat-edge"),
                (("llama-2-7b", "prefill", 1, 512), ("llama-2-7b", "prefill", 1, 4096),
                 ("llama-2-7b", "decode", 1, 2048), ("llama-2-7b", "decode", 16, 2048),
                 ("mixtral-8x7b", "prefill", 1, 512), ("mixtral-8x7b", "prefill", 1, 4096)),
                "spatial_mapper_vs_stream_once", "the FuseMax stream-once GEMM model"),
}
COLUMNS = ["model", "phase", "batch", "length", "hardware", "fixed_dram_GB", "tiling_dram_GB", "dram_ratio",
           "fixed_ms", "tiling_ms", "latency_ratio", "fixed_Mcycles", "tiling_Mcycles", "fixed_matrix_Mcycles",
           "tiling_matrix_Mcycles", "fixed_energy_J", "tiling_energy_J", "rows_tiling", "rows_fixed",
           "fixed_wall_s", "tiling_wall_s"]


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
        out[f"{mapper}_Mcycles"] = c.total_cycles / 1e6
        out[f"{mapper}_matrix_Mcycles"] = c.busy_cycles.get("matrix", 0.0) / 1e6
        out[f"{mapper}_energy_J"] = c.energy_pj / 1e12 if c.energy_pj is not None else float("nan")
        out[f"{mapper}_wall_s"] = best
        if mapper == "tiling":
            placed = report.meta["gemm_mapper"]["placed"]
            out["rows_tiling"] = placed.get("tiling", 0)
            out["rows_fixed"] = sum(v for k, v in placed.items() if k != "tiling")
    out["dram_ratio"] = out["tiling_dram_GB"] / out["fixed_dram_GB"]
    out["latency_ratio"] = out["tiling_ms"] / out["fixed_ms"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", default=",".join(KINDS), help=f"comma-separated kinds ({', '.join(KINDS)})")
    ap.add_argument("--hardware", default=None, help="comma-separated presets (default: each kind's list)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest wall time is kept")
    tables.add_output_options(ap, "systolic_mapper_vs_fold_order, spatial_mapper_vs_stream_once")
    args = ap.parse_args(argv)
    kinds = args.kind.split(",")
    if args.repeat <= 0:
        ap.error("--repeat must be positive")
    if unknown := sorted(set(kinds) - set(KINDS)):
        ap.error(f"unknown --kind {unknown[0]!r} (allowed: {', '.join(KINDS)})")
    import pandas as pd

    command = " ".join(argv if argv is not None else sys.argv[1:])
    for kind in kinds:
        presets, cases, stem, fixed = KINDS[kind]
        chosen = args.hardware.split(",") if args.hardware else presets
        table = pd.DataFrame([run_case(*case, hw, args.repeat) for hw in chosen for case in cases])
        text = (f"# {kind.capitalize()} presets: tiling mapper (default) vs {fixed}\n\n"
                f"Command: `python benchmarks/gemm_mapper_vs_fixed.py {command}`. length = prompt tokens "
                "(prefill) or context (decode). rows_*: matrix rows (distinct GEMM operators) each placement "
                f"took. Wall time: fastest of {args.repeat}, 1-minute load average {os.getloadavg()[0]:.2f} on "
                f"{os.cpu_count()} cores.\n\n" + tables.markdown_table(table, COLUMNS) + "\n")
        print(text)
        for directory in tables.output_dirs(args, ROOT):
            table[COLUMNS].to_csv(directory / f"{stem}.csv", index=False)
            (directory / f"{stem}.md").write_text(text)


if __name__ == "__main__":
    main()
