"""Decode on PIM presets: token latency, throughput, row-hit rate, where the time goes.

Also Duplex (Logic-PIM) against an H100 roofline on Mixtral-8x7B (tp = 4, the paper's 4-device
node), the setting of Duplex's published 2.07x average / 2.67x maximum throughput (arXiv
2409.01141 section VII); the paper's runs add co-processing and serving effects this table has not.

    PYTHONPATH=. python benchmarks/pim_decode.py [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from accelsim import tables
from accelsim.engines.roofline import roofline
from accelsim.simulate import simulate
from workloads.models import load_model
from workloads.transformer import build_model

CASES = [("pim-gpt", "gpt2-xl", 1, 512, 1), ("gddr6-aim", "llama-2-7b", 1, 2048, 1),
         ("hbm3-pim", "llama-2-7b", 16, 2048, 1), ("hbm3-pim-npc", "llama-2-7b", 16, 2048, 1),
         ("hbm3-pim-bankgroup", "llama-2-7b", 16, 2048, 1), ("hbm3-pim-buffer", "llama-2-7b", 16, 2048, 1),
         ("duplex", "llama-2-7b", 8, 2048, 1)]
DUPLEX_BATCHES = (32, 64, 128)


ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tables.add_output_options(ap, "pim_decode")
    args = ap.parse_args()
    table = []
    print(f"{'device':19} {'model':11} {'batch':>5} {'ctx':>5} {'ms/token':>9} {'tok/s':>8} {'hit':>6} "
          f"{'pim time':>8} {'wall_s':>6}")
    for device, model, batch, context, tp in CASES:
        t0 = time.perf_counter()
        r = simulate(build_model(load_model(model), "decode", batch=batch, context=context, tp=tp), device)
        t = r.totals
        row = dict(device=device, model=model, batch=batch, context=context, tp=tp,
                   token_latency_s=t["token_latency_s"], tokens_per_s=t["tokens_per_s"],
                   row_hit_rate=t["row_hit_rate"], pim_fraction_s=t["pim_fraction_s"],
                   energy_pj=t["energy_pj"], wall_s=time.perf_counter() - t0)
        table.append(row)
        print(f"{device:19} {model:11} {batch:5} {context:5} {1e3 * row['token_latency_s']:9.3f} "
              f"{row['tokens_per_s']:8.0f} {row['row_hit_rate']:6.3f} {100 * row['pim_fraction_s']:7.1f}% "
              f"{row['wall_s']:6.1f}")
    print("\nDuplex vs H100 roofline, mixtral-8x7b tp=4, context 2048")
    for batch in DUPLEX_BATCHES:
        g = build_model(load_model("mixtral-8x7b"), "decode", batch=batch, context=2048, tp=4)
        duplex = simulate(g, "duplex").totals["token_latency_s"]
        gpu = roofline(g, "h100-sxm").totals["total_s"]
        table.append(dict(device="duplex-vs-h100", model="mixtral-8x7b", batch=batch, context=2048, tp=4,
                          duplex_s=duplex, h100_roofline_s=gpu, speedup=gpu / duplex))
        print(f"  batch {batch:4}: duplex {1e3 * duplex:.3f} ms, h100 roofline {1e3 * gpu:.3f} ms, "
              f"speedup {gpu / duplex:.2f}x")
    for directory in tables.output_dirs(args, ROOT):
        (directory / "pim_decode.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
