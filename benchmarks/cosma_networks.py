"""COSMA vs the four baselines on the ten hand-designed networks at M_R, M_H and M_P.

Usage: ``python benchmarks/cosma_networks.py [--time-limit 30] [--solver cpsat] [--networks a,b]
[--unfused] [--modes a,w] [--network-limit-s 600] [--threads 2] [--out DIR | --write-results]``
Writes ``cosma_networks.csv``, ``.md`` and ``.png`` into ``--out`` (default a directory under
the system temp dir); only ``--write-results`` rewrites the committed tables in ``results/``
(rows are appended as they finish, so a long run that is stopped still leaves its rows). Every
row has the proven lower bound on non-compulsory bytes (``lower_bound_bytes``), the gap, and
the reduction against each baseline family separately: ``reduction_pct`` against the best of the
four offline-first baselines, ``reduction_literal_pct`` against the paper's baseline read
literally (default order, online allocator, no offline plan; ``mappers/baselines.py``). ``--unfused`` builds the networks with
``fold_bn=False, fuse_activations=False`` (BN and activation as their own operators with their own
tensors, as in PyTorch/TFLite exported graphs, which is the granularity the COSMA paper evaluates)
and writes ``results/cosma_networks_unfused.*`` instead. ``--modes a,w`` runs all networks
activations-only first, then all with weights. Each (network, mode) runs in a child process;
one that exceeds ``--network-limit-s`` is stopped and recorded as skipped. ``solve_cpu_s`` is the CPU time of the solve (all threads), next to the wall ``solve_s``: on a
shared machine wall time is inflated. Every COSMA mapping is replayed by
``accelsim.engines.scratchpad`` and the replayed byte count is the one reported.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables  # noqa: E402
from accelsim.engines.scratchpad import replay  # noqa: E402
from mappers.baselines import literal_baselines, run_baselines  # noqa: E402
from mappers.cosma import BUDGETS, budgets, solve_cosma  # noqa: E402
from mappers.divide import divide_and_conquer  # noqa: E402
from mappers.milp import relative_gap  # noqa: E402
from mappers.memory_problem import MemoryProblem  # noqa: E402
from workloads.cnn import build_network  # noqa: E402

# The ten hand-designed networks of the COSMA evaluation (PAPERS.md), as named in workloads.cnn;
# L-RASPP is built on MobileNetV3-Large and the Transformer is the base model of Vaswani et al.
TEN = ["resnet50", "fc-densenet", "resnext50", "r2plus1d-18", "s3d", "fcn-resnet50", "lraspp-mobilenetv3",
       "deeplabv3-resnet50", "transformer-base", "vit-b-16"]
BASELINES = ["default+belady", "default+greedy", "min_peak+belady", "min_peak+greedy"]
LITERAL = ["literal+belady", "literal+greedy"]
FIELDS = ["network", "with_weights", "budget", "capacity_bytes", "ops", "cosma_bytes", "lower_bound_bytes", "method",
          "status", "gap", "solve_s", "solve_cpu_s", *BASELINES, "best_baseline_bytes", "reduction_pct", *LITERAL,
          "best_literal_bytes", "reduction_literal_pct", "m_p_status", "solver"]


def reduction(base: int, got: int) -> float | None:
    return round(100 * (base - got) / base, 1) if base else None


def run(network: str, with_weights: bool, solver: str, time_limit_s: float, unfused: bool = False,
        threads: int = 2) -> list[dict]:
    graph = build_network(network, fold_bn=False, fuse_activations=False) if unfused else build_network(network)
    pb = MemoryProblem.from_graph(graph, with_weights)
    b = budgets(pb, solver=solver, time_limit_s=time_limit_s, threads=threads)
    rows = []
    for key in BUDGETS:
        cap = b[key]
        base = {r.name: r for r in run_baselines(pb, cap, b["min_peak_order"])}
        best = min(base.values(), key=lambda r: r.non_compulsory_bytes)
        literal = {r.name: r for r in literal_baselines(pb, cap)}
        cpu0 = time.process_time()  # all threads of this process: wall time is inflated on a shared machine
        res = solve_cosma(pb, cap, solver=solver, time_limit_s=time_limit_s, warm_start=best.plan, threads=threads)
        method = "ilp"
        if res.status != "optimal" and res.non_compulsory_bytes > 0:
            # one ILP did not finish: try divide and conquer (20-operator pieces), keep the better
            dc = divide_and_conquer(pb, cap, piece_ops=20, solver=solver, time_limit_s=time_limit_s,
                                    warm_start=res.plan, threads=threads, base_orders=[b["min_peak_order"]])
            if dc.non_compulsory_bytes < res.non_compulsory_bytes:
                dc.solve_s += res.solve_s
                # the single ILP's proven bound holds for the whole problem, so it bounds this one too
                if res.best_bound is not None and res.best_bound > (dc.best_bound or 0):
                    dc.best_bound = res.best_bound
                    dc.gap = relative_gap(dc.non_compulsory_bytes, res.best_bound)
                    if dc.gap == 0:
                        dc.status = "optimal"
                res, method = dc, "ilp+divide"
            else:
                res.solve_s += dc.solve_s
        replayed = replay(graph, res.mapping, cap, with_weights).non_compulsory_bytes
        assert replayed == res.non_compulsory_bytes, (network, key, replayed, res.non_compulsory_bytes)
        assert replayed <= min(r.non_compulsory_bytes for r in base.values()), (network, key)
        assert res.best_bound is None or res.best_bound <= replayed, (network, key, res.best_bound, replayed)
        bb = best.non_compulsory_bytes
        bl = min(r.non_compulsory_bytes for r in literal.values())
        rows.append({
            "network": network, "with_weights": with_weights, "budget": key, "capacity_bytes": cap, "ops": pb.n_ops,
            "cosma_bytes": replayed, "lower_bound_bytes": None if res.best_bound is None else int(res.best_bound),
            "method": method, "status": res.status, "gap": None if res.gap is None else round(res.gap, 4),
            "solve_s": round(res.solve_s, 2), "solve_cpu_s": round(time.process_time() - cpu0, 2), **{n: base[n].non_compulsory_bytes for n in BASELINES},
            "best_baseline_bytes": bb, "reduction_pct": reduction(bb, replayed),
            **{n: literal[n].non_compulsory_bytes for n in LITERAL}, "best_literal_bytes": bl,
            "reduction_literal_pct": reduction(bl, replayed), "m_p_status": b["m_p_status"], "solver": solver})
    return rows


def markdown_table(df) -> str:
    return tables.markdown_table(df, float_format=str)


def totals_lines(df) -> list[str]:
    """Counts over all instances: how often M_R = M_H = M_P, zero-byte baselines, solver statuses."""
    eq = []
    for ww, part in df.groupby("with_weights"):
        cap = part.pivot(index="network", columns="budget", values="capacity_bytes")
        if set(BUDGETS) <= set(cap.columns):
            same = (cap["M_R"] == cap["M_H"]) & (cap["M_H"] == cap["M_P"])
            eq.append(f"{'with weights' if ww else 'activations only'}: {int(same.sum())} of {len(cap)}")
    red = df["reduction_pct"].dropna()
    red_lit = df["reduction_literal_pct"].dropna() if "reduction_literal_pct" in df else red.iloc[:0]
    at_mr = df[df["budget"] == "M_R"]
    lit_mr = at_mr["reduction_literal_pct"].dropna() if "reduction_literal_pct" in at_mr else red.iloc[:0]
    off_mr = at_mr["reduction_pct"].dropna()
    return ["## Totals", "",
            f"- instances: {len(df)}; best baseline already 0 bytes: {int((df['best_baseline_bytes'] == 0).sum())};"
            f" COSMA 0 bytes: {int((df['cosma_bytes'] == 0).sum())}",
            f"- networks with M_R = M_H = M_P: {'; '.join(eq)}",
            f"- solve status: {df['status'].value_counts().to_dict()}; M_P status: {df['m_p_status'].value_counts().to_dict()}",
            f"- mean reduction over all {len(red)} instances with a non-zero baseline: "
            f"{round(red.mean(), 1) if len(red) else None}% (paper: 84% at M_R)",
            f"- at M_R, mean reduction against the offline-first baselines: "
            f"{round(off_mr.mean(), 1) if len(off_mr) else None}% over {len(off_mr)} instances; against the literal "
            f"baselines (default order, online allocator): {round(lit_mr.mean(), 1) if len(lit_mr) else None}% over "
            f"{len(lit_mr)} instances (all budgets: {round(red_lit.mean(), 1) if len(red_lit) else None}% over "
            f"{len(red_lit)})",
            f"- proven optimal (gap 0): {int((df['status'] == 'optimal').sum())} of {len(df)}; max gap "
            f"{df['gap'].max()}; max solve {df['solve_s'].max()} s", ""]


# Why this table is not the paper's 84%; kept with the generator so a rerun keeps the explanation.
WHY_NOT_84 = [
    "## Why these numbers differ from the paper's 84% at M_R", "",
    "- **Where the peak is.** In these CNNs the largest single-operator working set (M_R) sits in the",
    "  high-resolution stem/first stage, where the graph is a chain. In a chain the live bytes at any",
    "  step are that step's inputs and outputs, so the minimum peak M_P equals M_R and M_H = M_R too;",
    "  no scratchpad traffic is needed at any budget. Leaving BN and activations as separate operators",
    "  (`--unfused`) multiplies the operator count by 1.05-2.5x and can raise M_R (an elementwise",
    "  operator holds two copies of one tensor, more than a channel-expanding convolution's input +",
    "  output), but on a chain the peak is still one operator's working set, so M_R and the peak rise",
    "  together; only graphs whose peak is set by branches (FC-DenseNet's concatenations, R(2+1)D, ViT)",
    "  or by weights open a gap between M_R and M_P.",
    "- **Baselines.** Our TFLite-style offline arena (greedy by size, best fit over lifetimes) is used as",
    "  is whenever it fits, and on chain-like graphs it reaches the order's peak, so the best offline-first",
    "  baseline already needs 0 bytes on most instances and the reduction is undefined there (excluded from",
    "  the mean). Read literally, the paper's baseline is the framework order run through the runtime's",
    "  online allocator with Belady or greedy replacement and no offline plan (`literal+*` columns): that",
    "  allocator fragments and spills on almost every instance, and the mean reduction against it at M_R",
    "  (Totals above) is the number to compare with the paper's 84%; it is the family the paper most",
    "  plausibly used, since an offline plan that fits would have left it nothing to reduce on these graphs.",
    "- **Budgets and graphs.** M_R follows the paper's definition, but the paper publishes no per-model",
    "  table or per-model budgets, and our network definitions (input sizes, heads, sequence length)",
    "  are reconstructions; a few percent difference in one tensor changes whether M_R < peak.",
    "- **Solver.** Instances marked `feasible` stopped at the time limit (CP-SAT on 2 shared cores, vs",
    "  Gurobi in the paper); their COSMA bytes are upper bounds, so the reductions there are lower",
    "  bounds on what the exact ILP would give.",
    "- Where a baseline does need traffic, COSMA's reductions are large (see the tables), and at M_P",
    "  COSMA reaches 0 where a baseline does not, as the paper reports.", ""]


def write_outputs(rows: list[dict], out: Path, skipped: list[tuple[str, bool, str]] = (),
                  command: str = "python benchmarks/cosma_networks.py") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(rows)
    lines = ["# COSMA vs baselines: non-compulsory off-chip bytes", "",
             f"Generated by `{command}`; bytes replayed by the scratchpad simulator.", ""]
    if skipped:
        lines += ["Skipped (network, with_weights, reason): "
                  + "; ".join(f"{n} {ww} {why}" for n, ww, why in skipped), ""]
    for ww, part in df.groupby("with_weights"):
        lines.append(f"## {'activations + weights' if ww else 'activations only'}")
        lines.append("")
        lines.append(markdown_table(part.drop(columns=["with_weights"])))
        lines.append("")
    summary = []
    for (ww, key), part in df.groupby(["with_weights", "budget"]):
        red = part["reduction_pct"].dropna()
        summary.append({"with_weights": ww, "budget": key, "instances": len(part),
                        "instances_baseline_nonzero": len(red),
                        "mean_reduction_pct": round(red.mean(), 1) if len(red) else None,
                        "cosma_zero": int((part["cosma_bytes"] == 0).sum()),
                        "baseline_zero": int((part["best_baseline_bytes"] == 0).sum()),
                        "optimal": int((part["status"] == "optimal").sum()),
                        "feasible": int((part["status"] == "feasible").sum()),
                        "other_status": int((~part["status"].isin(["optimal", "feasible"])).sum()),
                        "mean_solve_s": round(part["solve_s"].mean(), 2), "max_solve_s": part["solve_s"].max()})
    lines += ["## Summary", "", markdown_table(pd.DataFrame(summary)), ""]
    lines += totals_lines(df)
    lines += WHY_NOT_84
    out.with_suffix(".md").write_text("\n".join(lines))
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), sharey=False)
    for i, ww in enumerate((False, True)):
        for j, key in enumerate(BUDGETS):
            ax = axes[i][j]
            part = df[(df.with_weights == ww) & (df.budget == key)]
            if part.empty:
                continue
            x = range(len(part))
            width = 0.16
            for k, name in enumerate([*BASELINES, "cosma_bytes"]):
                ax.bar([v + (k - 2) * width for v in x], part[name] / 1e6, width,
                       label="COSMA" if name == "cosma_bytes" else name)
            ax.set_xticks(list(x), part["network"], rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{key}, {'act + weights' if ww else 'activations'}", fontsize=9)
            ax.set_ylabel("non-compulsory MB")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)


def _child(queue, net: str, ww: bool, solver: str, time_limit_s: float, unfused: bool, threads: int) -> None:
    try:
        queue.put(("ok", run(net, ww, solver, time_limit_s, unfused, threads)))
    except Exception as exc:  # reported by the parent as a skipped row, with the reason
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_limited(net: str, ww: bool, solver: str, time_limit_s: float, unfused: bool, limit_s: float, threads: int):
    """Run one (network, mode) in a child process so a model that cannot even be built in time
    can be stopped without losing the rest of the benchmark."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(q, net, ww, solver, time_limit_s, unfused, threads))
    proc.start()
    try:
        kind, payload = q.get(timeout=limit_s)  # None waits for as long as the run takes
    except queue_mod.Empty:
        kind, payload = "error", f"stopped after {limit_s:.0f} s wall"
    proc.join(timeout=5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return kind, payload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--solver", default="cpsat")
    ap.add_argument("--networks", default=",".join(TEN))
    ap.add_argument("--unfused", action="store_true",
                    help="keep BN and activations as separate operators (framework-graph granularity)")
    ap.add_argument("--modes", default="a,w", help="a = activations only, w = with weights; run in this order")
    ap.add_argument("--network-limit-s", type=float, default=None,
                    help="wall limit per (network, mode) in seconds (default: none)")
    ap.add_argument("--threads", type=int, default=2, help="solver threads (the machine may be shared)")
    tables.add_output_options(ap, "cosma_networks")
    args = ap.parse_args()
    if args.time_limit <= 0:
        ap.error(f"--time-limit must be positive, got {args.time_limit}")
    if args.network_limit_s is not None and not 0 < args.network_limit_s <= 1e6:
        ap.error(f"--network-limit-s must be in (0, 1e6] seconds, got {args.network_limit_s}")
    default_out = "cosma_networks_unfused" if args.unfused else "cosma_networks"
    out_dir = tables.primary_output_dir(args, ROOT)
    out = out_dir / default_out
    command = "python " + " ".join(["benchmarks/cosma_networks.py", *sys.argv[1:]])
    rows: list[dict] = []
    skipped: list[tuple[str, bool, str]] = []
    csv_path = out.with_suffix(".csv")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    modes = [m.strip() == "w" for m in args.modes.split(",")]
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        for ww in modes:
            for net in args.networks.split(","):
                t0 = time.perf_counter()
                kind, payload = run_limited(net, ww, args.solver, args.time_limit, args.unfused, args.network_limit_s,
                                            args.threads)
                if kind != "ok":
                    skipped.append((net, ww, payload))
                    print(f"{net:<20} {'w' if ww else 'a'} SKIPPED {payload}", flush=True)
                    write_outputs(rows, out, skipped, command) if rows else None
                    continue
                for row in payload:
                    writer.writerow(row)
                    fh.flush()
                    rows.append(row)
                    print(f"{net:<20} {'w' if ww else 'a'} {row['budget']} cosma {row['cosma_bytes']:>10} "
                          f"bound {row['lower_bound_bytes']!s:>10} best baseline {row['best_baseline_bytes']:>10} "
                          f"literal {row['best_literal_bytes']:>10} {row['status']:<8} gap {row['gap']!s:<6} "
                          f"{row['solve_s']:>6} s", flush=True)
                print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
                write_outputs(rows, out, skipped, command)  # keep the .md current in case the run is stopped
    if rows:
        write_outputs(rows, out, skipped, command)
    else:
        out.with_suffix(".md").write_text("# COSMA vs baselines\n\nNo instance finished. Skipped: "
                                          + "; ".join(f"{n} {ww} {why}" for n, ww, why in skipped) + "\n")


if __name__ == "__main__":
    main()
