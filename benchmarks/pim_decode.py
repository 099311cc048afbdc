"""Decode on every PIM preset for the issue's model list, against the GPU each paper compares with.

Models: GPT-2 XL, Llama-2-7B / 13B / 70B, Mixtral-8x7B, Llama-3-70B. Devices: every ``kind: pim``
preset (bank-PIM: pim-gpt, gddr6-aim, hbm3-pim*; logic-PIM + xPU hybrid: duplex). Each model runs
at the smallest tensor-parallel degree (a divisor of its head count) whose weights and KV cache
fit the device; the row is one device of that system. A model that fits at no degree is listed
as a capacity refusal with the bytes missing. The GPU baseline is the paper's: T4 for PIM-GPT,
A100 80 GB for CENT's gddr6-aim and AttAcc's hbm3-pim*, H100 for Duplex; roofline, at its own
smallest fitting degree. ``speedup`` is GPU step time over PIM step time at the same batch
(per device of each system; the device counts are in the table). The all-reduce of tp > 1 is
costed at the device's host bandwidth (no interconnect model in the PIM presets).

Also: Duplex vs H100 on Mixtral-8x7B at tp = 4 (the paper's node) for batch 32-128, and a plot of
the speedup over batch for Llama-2-7B, where PIM stops paying off as Op/B grows; ``wall_s`` is
the simulator's own time per run (measured under shared-machine load; GEMV shapes simulated by an
earlier run of the same process are cached, so only the first run of a shape is cold). Energy:
``energy_pj_per_token`` is None where a component has no cited number (``energy_unknown``
names it); ``energy_known_pj_per_token`` is the cited part.

    PYTHONPATH=. python benchmarks/pim_decode.py [--out DIR] [--write-results] [--quick]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from accelsim import tables
from accelsim.engines.roofline import roofline
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import TensorRole, parts_of
from accelsim.ir.resident import resident_tensors
from accelsim.plots import MARKERS, save_figure
from accelsim.simulate import simulate
from workloads.models import load_model
from workloads.transformer import build_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("gpt2-xl", "llama-2-7b", "llama-2-13b", "llama-2-70b", "mixtral-8x7b", "llama-3-70b")
DEVICES = {"pim-gpt": "t4", "gddr6-aim": "a100-80gb", "hbm3-pim": "a100-80gb", "hbm3-pim-npc": "a100-80gb",
           "hbm3-pim-bankgroup": "a100-80gb", "hbm3-pim-buffer": "a100-80gb", "duplex": "h100-sxm"}
BATCHES = (1, 16)
CONTEXT = {"gpt2-xl": 1023}  # GPT-2: 1024 learned positions, context + the new token; the others 2048
SWEEP_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
DUPLEX_BATCHES = (32, 64, 128)


def resident_bytes(graph: Any) -> float:
    parts = [(p.name, p.graph, p.repeat) for p in parts_of(graph)]
    return sum(t.bytes * n for t, n in resident_tensors(parts, (TensorRole.WEIGHT, TensorRole.KV_CACHE)).values())


def degrees(model: str) -> list[int]:
    heads = load_model(model).num_heads
    return [d for d in range(1, heads + 1) if heads % d == 0]  # other splits are refused by build_model


def fitting_graph(model: str, batch: int, capacity: float) -> tuple[int, Any, float]:
    """(tp, graph, bytes missing at the largest degree if nothing fits, else 0)."""
    cfg, context = load_model(model), CONTEXT.get(model, 2048)
    for tp in degrees(model):
        try:
            g = build_model(cfg, "decode", batch=batch, context=context, tp=tp)
        except AccelsimError:  # a degree that does not divide the FFN or KV heads
            continue
        need = resident_bytes(g)
        if need <= capacity:
            return tp, g, 0.0
    return tp, None, need - capacity


def run(device: str, model: str, batch: int) -> dict[str, Any]:
    hw, gpu_name = load_hardware(device), DEVICES[device]
    gpu = load_hardware(gpu_name)
    row: dict[str, Any] = dict(device=device, model=model, batch=batch, context=CONTEXT.get(model, 2048), gpu=gpu_name)
    tp, g, missing = fitting_graph(model, batch, hw.capacity_bytes)
    if g is None:
        return row | dict(status=f"refused: {missing:.4g} bytes missing on one device at tp={tp}", tp=tp)
    t0 = time.perf_counter()
    r = simulate(g, hw)
    wall = time.perf_counter() - t0
    t = r.totals
    gtp, gg, _ = fitting_graph(model, batch, gpu.memory.capacity_bytes)
    gpu_s = roofline(gg, gpu).totals["total_s"] if gg is not None else None
    return row | dict(status="ok", tp=tp, token_latency_s=t["token_latency_s"], tokens_per_s=t["tokens_per_s"],
                      row_hit_rate=t["row_hit_rate"],
                      pim_fraction_s=t["pim_fraction_s"], energy_pj=t["energy_pj"],
                      energy_pj_per_token=t["energy_pj"] / batch if t["energy_pj"] is not None else None,
                      energy_known_pj_per_token=r.core.energy_known_pj / batch,
                      energy_unknown=",".join(r.core.energy_unknown) or None,
                      gpu_tp=gtp if gg is not None else None, gpu_step_s=gpu_s,
                      speedup=gpu_s / t["token_latency_s"] if gpu_s else None, wall_s=wall)


def sweep(model: str = "llama-2-7b") -> list[dict]:
    out = []
    for device in DEVICES:
        for batch in SWEEP_BATCHES:
            r = run(device, model, batch)
            if r["status"] == "ok":
                out.append(dict(device=device, batch=batch, speedup=r["speedup"], tp=r["tp"]))
    return out


def figure(points: list[dict], model: str) -> Figure:
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for k, device in enumerate(DEVICES):
        rows = [p for p in points if p["device"] == device]
        if rows:
            ax.plot([p["batch"] for p in rows], [p["speedup"] for p in rows], marker=MARKERS[k % len(MARKERS)], ms=3,
                    label=f"{device} vs {DEVICES[device]} (PIM tp {min(p['tp'] for p in rows)}-"
                          f"{max(p['tp'] for p in rows)}: more devices once the KV cache needs them)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("decode batch (Op/B of the weight GEMVs grows with it)")
    ax.set_ylabel("step speedup, PIM over GPU roofline")
    ax.set_title(f"{model} decode, context 2048", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


COLUMNS = ["device", "model", "batch", "tp", "status", "token_latency_s", "tokens_per_s", "row_hit_rate",
           "pim_fraction_s", "energy_pj_per_token", "energy_known_pj_per_token", "energy_unknown", "gpu", "gpu_tp", "gpu_step_s", "speedup", "wall_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tables.add_output_options(ap, "pim_decode")
    ap.add_argument("--quick", action="store_true", help="batch 1 only, no sweep (a smoke run)")
    args = ap.parse_args()
    table = [run(d, m, b) for m in MODELS for d in DEVICES for b in (BATCHES[:1] if args.quick else BATCHES)]
    df = pd.DataFrame(table)
    print(tables.markdown_table(df, [c for c in COLUMNS if c in df.columns]))
    duplex = []
    for batch in () if args.quick else DUPLEX_BATCHES:
        g = build_model(load_model("mixtral-8x7b"), "decode", batch=batch, context=2048, tp=4)
        d_s, h_s = simulate(g, "duplex").totals["token_latency_s"], roofline(g, "h100-sxm").totals["total_s"]
        duplex.append(dict(device="duplex-vs-h100", model="mixtral-8x7b", batch=batch, context=2048, tp=4,
                           duplex_s=d_s, h100_roofline_s=h_s, speedup=h_s / d_s))
        print(f"duplex vs h100 roofline, mixtral-8x7b tp=4 batch {batch}: {h_s / d_s:.2f}x (paper: 2.07x average, "
              "2.67x max, with serving effects)")
    points = [] if args.quick else sweep()
    gpt2 = [r for r in table if r["model"] == "gpt2-xl" and r["device"] == "pim-gpt" and r["batch"] == 1]
    if gpt2:
        print(f"target: one GPT-2 XL decode token on pim-gpt simulated in {gpt2[0]['wall_s']:.2f} s (< 1 s asked)")
    for directory in tables.output_dirs(args, ROOT):
        (directory / "pim_decode.json").write_text(json.dumps(dict(decode=table, duplex_vs_h100=duplex,
                                                                   speedup_vs_batch=points), indent=2))
        (directory / "pim_decode.md").write_text(tables.markdown_table(df, [c for c in COLUMNS if c in df.columns])
                                                 + "\n")
        if points:
            save_figure(figure(points, "llama-2-7b"), directory / "pim_decode_speedup")


if __name__ == "__main__":
    main()
