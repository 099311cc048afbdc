"""Whole models on every hardware kind through ``accelsim.simulate``: latency, bound, utilization,
bytes by role, and the simulator's own wall time.

Cases: Llama-2-7B, Llama-2-70B, Mixtral-8x7B and DeepSeek-V3, one decode step (batch 1 and 16,
context 2048) and one prefill (batch 1, 4096 tokens), on systolic (tpu-v1, tpu-v4, edge-npu),
spatial (fusemax-cloud) and GPU (a100-80gb, h100-sxm) presets. Each case is simulated
``--repeat`` times and the fastest wall time kept (the machine is shared).

    python benchmarks/simulate_models.py                      # prints the table, writes to --out
    python benchmarks/simulate_models.py --write-results      # also rewrites results/simulate_models.*
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables  # noqa: E402

MODELS = ("llama-2-7b", "llama-2-70b", "mixtral-8x7b", "deepseek-v3")
HARDWARE = ("tpu-v1", "tpu-v4", "edge-npu", "fusemax-cloud", "a100-80gb", "h100-sxm")
STEPS = (("decode", 1), ("decode", 16), ("prefill", 1))


def run_case(model: str, hardware: str, phase: str, batch: int, seq: int, context: int, repeat: int) -> dict:
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    cfg, hw = load_model(model), load_hardware(hardware)
    best = float("inf")
    report = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        workload = build_model(cfg, phase, batch=batch, seq=seq, context=context)
        report = simulate(workload, hw)
        best = min(best, time.perf_counter() - t0)
    core = report.core
    tokens = batch * (seq if phase == "prefill" else 1)
    util = core.utilization
    busiest = max(util, key=util.get)
    roles = core.offchip_bytes_by_role
    return {"model": model, "hardware": hardware, "kind": hw.kind, "phase": phase, "batch": batch,
            "tokens": tokens, "latency_ms": core.total_s * 1e3, "tokens_per_s": tokens / core.total_s,
            "busiest_unit": busiest, "busiest_utilization": util[busiest],
            "weight_gb": roles.get("weight", 0.0) / 1e9, "kv_cache_gb": roles.get("kv_cache", 0.0) / 1e9,
            "activation_gb": roles.get("activation", 0.0) / 1e9, "dram_gb": core.dram_bytes / 1e9,
            "fits_memory": report.totals.get("fits_memory"), "wall_s": best}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo names")
    ap.add_argument("--hardware", default=",".join(HARDWARE), help="comma-separated presets")
    ap.add_argument("--seq", type=int, default=4096, help="prefill length (default 4096)")
    ap.add_argument("--context", type=int, default=2048, help="decode context (default 2048)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest wall time is kept")
    tables.add_output_options(ap, "simulate_models")
    args = ap.parse_args(argv)
    if args.seq <= 0 or args.context <= 0 or args.repeat <= 0:
        ap.error("--seq, --context and --repeat must be positive")
    import os

    import pandas as pd
    from tqdm import tqdm

    from accelsim.tables import markdown_table

    cases = [(m, h, p, b) for m in args.models.split(",") for h in args.hardware.split(",") for p, b in STEPS]
    rows = []
    for m, h, p, b in tqdm(cases, desc="cases", file=sys.stderr):
        rows.append(run_case(m, h, p, b, args.seq, args.context, args.repeat))
    table = pd.DataFrame(rows)
    load = os.getloadavg()[0]
    header = (f"# Whole models through accelsim.simulate\n\nCommand: `python benchmarks/simulate_models.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`; prefill {args.seq} tokens, decode context "
              f"{args.context}; wall time = fastest of {args.repeat} runs (build + simulate), measured with a "
              f"1-minute load average of {load:.2f} on {os.cpu_count()} cores.\n\n")
    slow = table.loc[table.wall_s.idxmax()]
    summary = (f"\nSlowest case: {slow.model} {slow.phase} b{slow.batch} on {slow.hardware}, {slow.wall_s:.3f} s. "
               f"Llama-2-70B decode: max wall {table[(table.model == 'llama-2-70b') & (table.phase == 'decode')].wall_s.max():.3f} s; "
               f"Llama-2-7B prefill {args.seq}: max wall "
               f"{table[(table.model == 'llama-2-7b') & (table.phase == 'prefill')].wall_s.max():.3f} s.\n")
    text = header + markdown_table(table) + "\n" + summary
    print(text)
    targets = tables.output_dirs(args, ROOT)
    for directory in targets:
        table.to_csv(directory / "simulate_models.csv", index=False)
        (directory / "simulate_models.md").write_text(text)
    print(f"written to {', '.join(str(d) for d in targets)}", file=sys.stderr)


if __name__ == "__main__":
    main()
