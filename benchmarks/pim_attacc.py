"""AttAcc HBM3-PIM decode attention: accelsim's command-level model vs AttAcc's cycle cache.

For every row of the development sample (shared/reference/pim/attacc_hbm3_attention_sample.csv)
it rebuilds AttAcc's command stream, checks the command counts, times channel 0 with the HBM3
timing rules and prints the cycle error. No constant is fitted to any row.

    PYTHONPATH=. python benchmarks/pim_attacc.py [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from accelsim import tables
from accelsim.engines.pim.attacc_trace import (
    AttentionCase,
    attention_stream,
    command_counts,
    split_channels,
)
from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.hardware.dram_sets import standard
from accelsim.reference_data import reference_dir

LEVEL = {"BA": "bank", "BG": "bankgroup", "BUFFER": "buffer"}


ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tables.add_output_options(ap, "pim_attacc")
    args = ap.parse_args()
    ref = reference_dir("pim")
    if ref is None:
        raise SystemExit("shared/reference/pim not found (set ACCELSIM_SHARED_DIR)")
    with open(ref / "attacc_hbm3_attention_sample.csv") as f:
        rows = list(csv.DictReader(f))
    table = []
    print(f"{'level':7} {'L':>5} {'heads':>5} {'dh':>4} {'B':>2} {'pc':>5} {'attacc':>8} {'accelsim':>8} "
          f"{'error':>7} {'counts':>7} {'sim_s':>6}")
    for r in rows:
        case = AttentionCase(LEVEL[r["pim_type"]], int(r["nhead"]), int(r["dhead"]), int(r["L"]), int(r["dbyte"]))
        std = standard("HBM3-AttAcc" if r["power_constraint"] == "True" else "HBM3-AttAcc-NPC")
        t0 = time.perf_counter()
        stream = attention_stream(case)
        counts = command_counts(stream)
        res = simulate_channel(split_channels(stream)[0], std.cycles(), std.organization)
        wall = time.perf_counter() - t0
        ref_cycles = int(r["cycle"])
        exact = counts == {k: int(r[k]) for k in counts}
        err = (res.cycles - ref_cycles) / ref_cycles
        table.append(dict(level=case.level, L=case.context, heads=case.heads, head_dim=case.head_dim,
                          dtype_bytes=case.dtype_bytes, power_constraint=r["power_constraint"] == "True",
                          attacc_cycles=ref_cycles, accelsim_cycles=res.cycles, error=err,
                          counts_exact=exact, sim_wall_s=wall))
        print(f"{case.level:7} {case.context:5} {case.heads:5} {case.head_dim:4} {case.dtype_bytes:2} "
              f"{r['power_constraint']:>5} {ref_cycles:8} {res.cycles:8} {100 * err:+6.1f}% "
              f"{'exact' if exact else 'DIFF':>7} {wall:6.1f}")
    mean_abs = sum(abs(t["error"]) for t in table) / len(table)
    print(f"mean |error| {100 * mean_abs:.2f}%, max |error| {100 * max(abs(t['error']) for t in table):.2f}%")
    for directory in tables.output_dirs(args, ROOT):
        (directory / "pim_attacc.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
