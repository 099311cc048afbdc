"""Serving on PIM vs GPU: continuous batching, the Op/B it reaches, and where PIM stops paying off.

One seeded trace (Poisson arrivals, uniform prompt and output lengths) is served with
prefill-prioritised continuous batching (``workloads.serving``) at several batch limits on each
PIM system and on the GPU roofline its host matches (Duplex: an H100-class xPU + Logic-PIM, vs
``h100-sxm``; ``hbm3-pim``: an A100-class host, vs ``a100-80gb``). For every batch size the PIM
run reached, the decode steps it made are re-costed on the GPU at the same batch and KV tokens:
the speedup is GPU time / PIM time of those steps, and the arithmetic intensity is the steps'
FLOPs over off-chip bytes (Report core). ``gddr6-aim`` is left out: its 16 GB hold llama-2-7b
only at a few requests, and its cycle model of a prefill takes minutes per call.

    PYTHONPATH=. python benchmarks/pim_serving.py [--model llama-2-7b] [--tp 1] [--requests 300] [--rate 100]
        [--limits 1,4,16,64,128] [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from matplotlib.figure import Figure

from accelsim import tables
from accelsim.plots import MARKERS, save_figure
from workloads.models import load_model
from workloads.serving import serve
from workloads.serving_cost import EngineCosts
from workloads.serving_trace import make_trace

PAIRS = (("duplex", "h100-sxm"), ("hbm3-pim", "a100-80gb"))
LIMITS = (1, 4, 16, 64, 128)
ROOT = Path(__file__).resolve().parents[1]


def speedup_points(pim_run, gpu_costs: EngineCosts) -> list[dict]:
    """Per batch size of ``pim_run``: its decode steps re-costed on the GPU at the same batch and KV."""
    by: dict[int, list] = {}
    for it in pim_run.iterations:
        if it.phase == "decode":
            by.setdefault(it.batch, []).append(it)
    rows = []
    for b, its in sorted(by.items()):
        pim_s = sum(i.latency_s for i in its)
        gpu_s = sum(gpu_costs.decode(b, i.kv_tokens_total).latency_s for i in its)
        rows.append({"batch": b, "steps": len(its),
                     "mean_context": sum(i.kv_tokens_total for i in its) / (b * len(its)),
                     "flops_per_byte": sum(i.flops for i in its) / sum(i.offchip_bytes for i in its),
                     "pim_step_s": pim_s / len(its), "gpu_step_s": gpu_s / len(its), "speedup": gpu_s / pim_s})
    return rows


def figure(points: list[dict], title: str) -> Figure:
    fig = Figure(figsize=(9, 3.6))
    ax, ax2 = fig.subplots(1, 2)
    for k, (pim, gpu) in enumerate(PAIRS):
        rows = sorted((p for p in points if p["pim"] == pim), key=lambda p: p["batch"])
        if not rows:
            continue
        label = f"{pim} vs {gpu}"
        ax.plot([p["batch"] for p in rows], [p["speedup"] for p in rows], marker=MARKERS[k], ms=3, label=label)
        ax2.plot([p["batch"] for p in rows], [p["flops_per_byte"] for p in rows], marker=MARKERS[k], ms=3, label=pim)
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xlabel("decode batch (requests in the step)")
        a.grid(True, alpha=0.3)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("decode-step speedup, PIM over GPU")
    ax.legend(fontsize=8)
    ax2.set_ylabel("FLOPs / off-chip byte")
    ax2.set_title("arithmetic intensity of the decode step", fontsize=9)
    ax.set_title(f"continuous-batching serving, {title}", fontsize=9)
    fig.tight_layout()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (the graph of one device)")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="Poisson arrival rate, requests/s (the default saturates every device here)")
    ap.add_argument("--input-len", default="128:1024", help="prompt tokens, N or LO:HI (uniform)")
    ap.add_argument("--output-len", default="32:256", help="generated tokens, N or LO:HI (uniform)")
    ap.add_argument("--limits", default=",".join(map(str, LIMITS)), help="batch limits, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    tables.add_output_options(ap, "pim_serving")
    args = ap.parse_args()

    def span(text: str):
        lo, _, hi = text.partition(":")
        return (int(lo), int(hi)) if hi else int(lo)

    cfg = load_model(args.model)
    trace = make_trace(args.requests, input_len=span(args.input_len), output_len=span(args.output_len),
                       rate_per_s=args.rate, seed=args.seed)
    runs, points = [], []
    print(f"{args.requests} requests, Poisson {args.rate}/s, in {args.input_len}, out {args.output_len}, "
          f"{args.model} tp={args.tp}")
    print(f"{'device':10} {'limit':>5} {'tok/s':>8} {'TTFT p50':>9} {'TBT p50':>8} {'TBT p99':>8} "
          f"{'lat p50':>8} {'calls':>5} {'wall_s':>6}")
    for pim, gpu in PAIRS:
        costs = {hw: EngineCosts(cfg, hw, tp=args.tp) for hw in (pim, gpu)}
        for limit in (int(x) for x in args.limits.split(",")):
            for hw in (pim, gpu):
                t0 = time.perf_counter()
                calls0 = costs[hw].engine_calls
                res = serve(trace, costs[hw], batch_limit=limit)
                s = res.summary()
                row = dict(device=hw, pim=pim, gpu=gpu, batch_limit=limit, **{k: s[k] for k in (
                    "requests", "tokens", "makespan_s", "tokens_per_s", "ttft_s", "tbt_s", "latency_s", "iterations")},
                    engine_calls=costs[hw].engine_calls - calls0, wall_s=time.perf_counter() - t0)
                runs.append(row)
                print(f"{hw:10} {limit:5} {row['tokens_per_s']:8.0f} {s['ttft_s']['p50']:9.3f} "
                      f"{1e3 * s['tbt_s']['p50']:7.2f}m {1e3 * s['tbt_s']['p99']:7.2f}m {s['latency_s']['p50']:8.2f} "
                      f"{row['engine_calls']:5} {row['wall_s']:6.1f}")
                if hw == pim:
                    for p in speedup_points(res, costs[gpu]):
                        if not any(q["pim"] == pim and q["batch"] == p["batch"] for q in points):
                            points.append(dict(pim=pim, gpu=gpu, **p))
            ratio = runs[-2]["tokens_per_s"] / runs[-1]["tokens_per_s"]
            print(f"{'':10} {'':5} serving throughput {pim}/{gpu}: {ratio:.2f}x")
    print("\nper batch size reached: decode step Op/B and PIM-over-GPU speedup")
    print(f"{'pim':10} {'batch':>5} {'steps':>6} {'ctx':>6} {'FLOP/B':>7} {'pim ms':>7} {'gpu ms':>7} {'speedup':>7}")
    for p in sorted(points, key=lambda p: (p["pim"], p["batch"])):
        print(f"{p['pim']:10} {p['batch']:5} {p['steps']:6} {p['mean_context']:6.0f} {p['flops_per_byte']:7.2f} "
              f"{1e3 * p['pim_step_s']:7.3f} {1e3 * p['gpu_step_s']:7.3f} {p['speedup']:7.2f}")
    fig = figure(points, f"{args.model} tp={args.tp}")
    stem = f"pim_serving_{args.model}" + (f"_tp{args.tp}" if args.tp > 1 else "")
    doc = {"model": args.model, "tp": args.tp, "requests": args.requests, "rate_per_s": args.rate,
           "input_len": args.input_len, "output_len": args.output_len, "seed": args.seed, "runs": runs,
           "batch_points": points}
    for directory in tables.output_dirs(args, ROOT):
        (directory / f"{stem}.json").write_text(json.dumps(doc, indent=2))
        save_figure(fig, directory / f"{stem}_speedup")


if __name__ == "__main__":
    main()
