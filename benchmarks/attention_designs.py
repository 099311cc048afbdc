"""FuseMax vs FLAT and the design ladder: four models x six sequence lengths, simulated.

Writes to ``--out DIR`` (default a temporary directory), or with ``--write-results`` to the
committed ``results/fusemax/``:
- ``attention_designs.csv``: every (model, seq, design) row: latency, DRAM bytes, energy, 2D/1D
  utilization, buffer need; plus the layer's linear GEMMs for end-to-end numbers;
- ``speedup_over_flat.csv`` / ``.md``: attention and end-to-end speedup and energy ratio of
  FuseMax over FLAT, and their arithmetic means (the paper: 6.7x and 0.79 attention, 5.3x and
  0.83 end to end), side by side with the same quantities computed from the FuseMax artifact's
  own tables where they exist (BERT and TrXL);
- ``utilization.csv``: 2D and 1D utilization per design;
- ``reproduction.csv`` / ``.md``: accelsim vs the artifact row by row (relative errors);
- figures ``speedup.png``, ``utilization.png``, ``energy.png`` like the paper's Figs. 6, 8-11.

Run: ``python benchmarks/attention_designs.py [--out DIR | --write-results]`` (about 3 s of
simulation on one core; it was ~93 s before the 1-pass stream became an exact recursion).
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.reference_data import reference_dir
from accelsim.engines.spatial import report  # noqa: E402
from accelsim.engines.spatial_linear import linear_report  # noqa: E402
from accelsim.hardware import load_hardware  # noqa: E402
from mappers.fusemax import DESIGN_HARDWARE, DESIGNS, mapped_graph, published_mapping  # noqa: E402
from workloads.attention import attention_model  # noqa: E402

MODELS = ("bert", "trxl", "t5", "xlm")  # the artifact's labels; registry names in REGISTRY_NAME
REGISTRY_NAME = {"bert": "bert-base", "trxl": "trxl", "t5": "t5-small", "xlm": "xlm"}
SEQS = {"1K": 1024, "4K": 4096, "16K": 16384, "64K": 65536, "256K": 262144, "1M": 1048576}
REF = reference_dir("fusemax") or Path("shared/reference/fusemax (not found)")
REF_FILES = {"fusemax": "attn-binding.csv", "arch": "attn-arch.csv", "cascade": "attn-cascade.csv",
             "flat": "attn-flat.csv", "unfused": "attn-unfused.csv"}
RESULTS = ROOT / "results" / "fusemax"
OUT = Path(tempfile.gettempdir()) / "accelsim-bench" / "fusemax"  # set by main() from --out / --write-results


def simulate_all() -> pd.DataFrame:
    rows = []
    hws = {d: load_hardware(DESIGN_HARDWARE[d]) for d in DESIGNS}
    for model in MODELS:
        m = attention_model(REGISTRY_NAME[model])
        for label, seq in SEQS.items():
            s = m.shape(seq)
            lin = {d: linear_report(m, seq, hws[d]).totals for d in ("flat", "fusemax")}
            for d in DESIGNS:
                t0 = time.perf_counter()
                mapping = published_mapping(d, hws[d], s)
                t = report(mapped_graph(s, mapping), hws[d], mapping).totals
                lin_t = lin["fusemax" if hws[d].name == "fusemax-cloud" else "flat"]
                rows.append({"model": model, "seq": label, "seq_len": seq, "design": d, "hardware": hws[d].name,
                             "latency_s": t["latency_s"], "dram_bytes": t["dram_bytes"], "energy_pj": t["energy_pj"],
                             "util_2d": t["util_2d"], "util_1d": t["util_1d"],
                             "buffer_bytes_needed": t["buffer_bytes_needed"],
                             "linear_latency_s": lin_t["latency_s"], "linear_energy_pj": lin_t["energy_pj"],
                             "sim_wall_s": time.perf_counter() - t0})
            print(f"{model:5s} {label:5s} done", file=sys.stderr)
    return pd.DataFrame(rows)


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    piv = df.pivot_table(index=["model", "seq", "seq_len"], columns="design",
                         values=["latency_s", "energy_pj", "linear_latency_s", "linear_energy_pj"])
    out = pd.DataFrame(index=piv.index)
    out["attn_speedup"] = piv["latency_s"]["flat"] / piv["latency_s"]["fusemax"]
    out["attn_energy_ratio"] = piv["energy_pj"]["fusemax"] / piv["energy_pj"]["flat"]
    e2e = lambda d: piv["latency_s"][d] + piv["linear_latency_s"][d]  # noqa: E731
    e2e_e = lambda d: piv["energy_pj"][d] + piv["linear_energy_pj"][d]  # noqa: E731
    out["e2e_speedup"] = e2e("flat") / e2e("fusemax")
    out["e2e_energy_ratio"] = e2e_e("fusemax") / e2e_e("flat")
    for d in ("unfused", "cascade", "arch"):
        out[f"{d}_speedup"] = piv["latency_s"]["flat"] / piv["latency_s"][d]
    return out.reset_index().sort_values(["model", "seq_len"])


def artifact_speedups() -> pd.DataFrame | None:
    """The same ratios from the artifact's own tables (BERT and TrXL rows only)."""
    if not REF.exists():
        return None
    load = lambda f: {(r["model"].lower(), r["seq_len"]): r for r in csv.DictReader(open(REF / f))}  # noqa: E731
    fm, fl = load("attn-binding.csv"), load("attn-flat.csv")
    e_fm, e_fl = load("end2end-proposal.csv"), load("end2end-flat.csv")
    rows = []
    for key in fm:
        lat = lambda t, k=key: float(t[k]["latency"])  # noqa: E731
        en = lambda t, k=key: float(t[k]["energy"])  # noqa: E731
        rows.append({"model": key[0], "seq": key[1], "attn_speedup": lat(fl) / lat(fm),
                     "attn_energy_ratio": en(fm) / en(fl),
                     "e2e_speedup": (lat(fl) + lat(e_fl)) / (lat(fm) + lat(e_fm)),
                     "e2e_energy_ratio": (en(fm) + en(e_fm)) / (en(fl) + en(e_fl))})
    return pd.DataFrame(rows)


def reproduction(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for d, f in REF_FILES.items():
        if not (REF / f).exists():
            continue
        for r in csv.DictReader(open(REF / f)):
            ours = df[(df.model == r["model"].lower()) & (df.seq == r["seq_len"]) & (df.design == d)].iloc[0]
            rows.append({"design": d, "model": r["model"], "seq": r["seq_len"],
                         "traffic_err_pct": 100 * (ours.dram_bytes / float(r["traffic"]) - 1),
                         "latency_err_pct": 100 * (ours.latency_s / float(r["latency"]) - 1),
                         "util_2d_diff": ours.util_2d - float(r["util_2d"]),
                         "util_1d_diff": ours.util_1d - float(r["util_1d"]),
                         "energy_err_pct": 100 * (ours.energy_pj / float(r["energy"]) - 1)})
    for f, d in (("end2end-flat.csv", "flat"), ("end2end-proposal.csv", "fusemax")):
        if not (REF / f).exists():
            continue
        for r in csv.DictReader(open(REF / f)):
            ours = df[(df.model == r["model"].lower()) & (df.seq == r["seq_len"]) & (df.design == d)].iloc[0]
            lin = linear_report(attention_model(REGISTRY_NAME[r["model"].lower()]), SEQS[r["seq_len"]], load_hardware(DESIGN_HARDWARE[d])).totals
            rows.append({"design": f"linear-{d}", "model": r["model"], "seq": r["seq_len"],
                         "traffic_err_pct": 100 * (lin["dram_bytes"] / float(r["traffic"]) - 1),
                         "latency_err_pct": 100 * (ours.linear_latency_s / float(r["latency"]) - 1),
                         "util_2d_diff": float("nan"), "util_1d_diff": float("nan"),
                         "energy_err_pct": 100 * (ours.linear_energy_pj / float(r["energy"]) - 1)})
    return pd.DataFrame(rows)


def figures(df: pd.DataFrame, sp: pd.DataFrame) -> None:
    labels = [f"{m}\n{s}" for m, s in zip(sp.model, sp.seq)]
    x = range(len(sp))
    fig, axes = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    axes[0].bar(x, sp.attn_speedup, color="tab:blue")
    axes[0].set_ylabel("attention speedup\nover FLAT")
    axes[0].axhline(1, color="k", lw=0.5)
    axes[1].bar(x, sp.e2e_speedup, color="tab:green")
    axes[1].set_ylabel("end-to-end speedup\nover FLAT")
    axes[1].set_xticks(list(x), labels, fontsize=7)
    fig.suptitle(f"FuseMax over FLAT (cloud, batch 64): mean attention {sp.attn_speedup.mean():.2f}x, "
                 f"end to end {sp.e2e_speedup.mean():.2f}x")
    fig.tight_layout()
    fig.savefig(OUT / "speedup.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, col in zip(axes, ("util_2d", "util_1d")):
        for d in DESIGNS:
            sub = df[df.design == d].groupby("seq_len")[col].mean()
            ax.plot(sub.index, sub.values, marker="o", label=d)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(col.replace("_", " ") + " (mean over models)")
        ax.set_ylim(0, 1.05)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(OUT / "utilization.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 3.5))
    ax.bar(x, sp.attn_energy_ratio, color="tab:orange", label="attention")
    ax.plot(list(x), sp.e2e_energy_ratio, "k.", label="end to end")
    ax.axhline(1, color="k", lw=0.5)
    ax.set_ylabel("energy, FuseMax / FLAT")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "energy.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output directory (default {OUT})")
    ap.add_argument("--write-results", action="store_true", help=f"write to the committed {RESULTS}")
    args = ap.parse_args(argv)
    OUT = RESULTS if args.write_results else args.out
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    df = simulate_all()
    df.to_csv(OUT / "attention_designs.csv", index=False)
    sp = speedups(df)
    sp.to_csv(OUT / "speedup_over_flat.csv", index=False)
    df.pivot_table(index=["model", "seq_len"], columns="design", values=["util_2d", "util_1d"]).to_csv(
        OUT / "utilization.csv")
    rep = reproduction(df)
    rep.to_csv(OUT / "reproduction.csv", index=False)
    art = artifact_speedups()
    figures(df, sp)
    lines = ["# FuseMax vs FLAT (accelsim simulation)", "",
             "Cloud designs (940 MHz, 256x256 + 256 PEs, 400 GiB/s; FuseMax 16 MiB, FLAT 32 MiB), batch 64.", "",
             "| model | seq | attention speedup | attention energy ratio | end-to-end speedup | end-to-end energy ratio |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sp.itertuples():
        lines.append(f"| {r.model} | {r.seq} | {r.attn_speedup:.2f} | {r.attn_energy_ratio:.3f} | "
                     f"{r.e2e_speedup:.2f} | {r.e2e_energy_ratio:.3f} |")
    means = {k: sp[k].mean() for k in ("attn_speedup", "attn_energy_ratio", "e2e_speedup", "e2e_energy_ratio")}
    lines += ["", f"Arithmetic means over 4 models x 6 lengths: attention speedup {means['attn_speedup']:.2f}x, "
              f"energy ratio {means['attn_energy_ratio']:.3f}; end to end {means['e2e_speedup']:.2f}x, "
              f"energy ratio {means['e2e_energy_ratio']:.3f} (paper: 6.7x, 0.79; 5.3x, 0.83)."]
    if art is not None:
        sub = sp[sp.model.isin(["bert", "trxl"])]
        lines += ["", "BERT and TrXL only, accelsim vs the artifact's own tables:",
                  f"- attention speedup {sub.attn_speedup.mean():.3f}x vs {art.attn_speedup.mean():.3f}x; "
                  f"energy ratio {sub.attn_energy_ratio.mean():.3f} vs {art.attn_energy_ratio.mean():.3f}",
                  f"- end to end {sub.e2e_speedup.mean():.3f}x vs {art.e2e_speedup.mean():.3f}x; "
                  f"energy ratio {sub.e2e_energy_ratio.mean():.3f} vs {art.e2e_energy_ratio.mean():.3f}"]
    lines += ["", "## Reproduction of the artifact's rows (relative errors, %; utilization differences)", "",
              "| design | model | seq | traffic % | latency % | util 2D | util 1D | energy % |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rep.itertuples():
        lines.append(f"| {r.design} | {r.model} | {r.seq} | {r.traffic_err_pct:+.3f} | {r.latency_err_pct:+.3f} | "
                     f"{r.util_2d_diff:+.4f} | {r.util_1d_diff:+.4f} | {r.energy_err_pct:+.1f} |")
    lines += ["", f"Max |traffic error| {rep.traffic_err_pct.abs().max():.3f}%, max |latency error| "
              f"{rep.latency_err_pct.abs().max():.3f}%, max |util difference| "
              f"{max(rep.util_2d_diff.abs().max(), rep.util_1d_diff.abs().max()):.4f}.",
              f"", f"Simulation wall time: {time.perf_counter() - t0:.1f} s."]
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
