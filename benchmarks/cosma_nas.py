"""COSMA divide and conquer on the NAS networks (and a decoder-only transformer block) at M_R.

Usage: ``python benchmarks/cosma_nas.py [--time-limit 60] [--piece-ops 30] [--passes 1] [--max-passes 4] [--threads 2]
[--out DIR | --write-results]``. Writes ``cosma_nas.csv`` and ``.md`` into ``--out`` (default under
the system temp dir); only ``--write-results`` rewrites ``results/cosma_nas.*``. M_R needs no
schedule search; the baselines' minimum-peak order is the greedy heuristic (the exact
minimum-peak ILP is too large for these graphs in the time given). Each row has the order-free
lower bound of ``mappers/bounds.py`` raised by order branching (``mappers/order_bounds.py``) and
by the order search (``mappers/order_search.py``, ``search_nodes`` nodes; all valid for any mapping
of the whole graph) and the gap to it,
and the reduction against the offline-first baselines and the literal ones separately.
``--time-limit`` is nominal seconds of CP-SAT deterministic time per pass (``mappers/milp.py``),
so with ``--threads 1`` the plans and bounds do not depend on the machine's load; ``solve_s``
(wall) does, ``solve_cpu_s`` much less.
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
from mappers.divide import divide_and_conquer  # noqa: E402
from mappers.memory_problem import MemoryProblem  # noqa: E402
from mappers.order_search import SEARCH_NODES_PER_S  # noqa: E402

NAS = ["pnasnet-5", "amoebanet-d", "nasnet-a", "darts"]
FIELDS = ["network", "with_weights", "ops", "capacity_bytes", "cosma_dc_bytes", "lower_bound_bytes", "gap", "status",
          "pieces", "pass_bytes", "search_nodes", "solve_s", "solve_cpu_s", "default+belady", "default+greedy", "min_peak+belady", "min_peak+greedy",
          "best_baseline_bytes", "reduction_pct", "literal+belady", "literal+greedy", "reduction_literal_pct"]


def load(name: str):
    from workloads.cnn import NETWORKS, build_network

    if name in NETWORKS:
        return build_network(name)
    from workloads.models import load_model
    from workloads.transformer import build_block

    return build_block(load_model(name), "prefill", seq=512)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--piece-ops", type=int, default=30)
    ap.add_argument("--networks", default=",".join(NAS + ["gpt2"]))
    tables.add_output_options(ap, "cosma_nas")
    ap.add_argument("--weights", choices=("both", "act", "weights"), default="both")
    ap.add_argument("--commit-ops", type=int, default=None, help="rolling horizon: steps kept per solve")
    ap.add_argument("--passes", type=int, default=1, help="divide-and-conquer passes (best so far kept)")
    ap.add_argument("--max-passes", type=int, default=4,
                    help="further passes while the pieces used less than passes x time limit (deterministic)")
    ap.add_argument("--threads", type=int, default=2, help="solver threads (the machine may be shared)")
    ap.add_argument("--bound-nodes", type=int, default=None,
                    help=f"order-search nodes for the lower bound (default: {SEARCH_NODES_PER_S} per second of "
                         "--time-limit)")
    args = ap.parse_args()
    if args.time_limit <= 0 or args.piece_ops < 1 or args.passes < 1 or args.max_passes < 1:
        ap.error("--time-limit must be positive, --piece-ops, --passes and --max-passes at least 1")
    if args.bound_nodes is not None and args.bound_nodes < 0:
        ap.error("--bound-nodes must be 0 or more")
    out_dir = tables.primary_output_dir(args, ROOT)
    out = out_dir / "cosma_nas"
    command = "python " + " ".join(["benchmarks/cosma_nas.py", *sys.argv[1:]])
    rows = []
    with out.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for name in args.networks.split(","):
            graph = load(name)
            for ww in {"both": (False, True), "act": (False,), "weights": (True,)}[args.weights]:
                pb = MemoryProblem.from_graph(graph, ww)
                cap = pb.m_r
                base = {r.name: r for r in run_baselines(pb, cap)}
                literal = {r.name: r for r in literal_baselines(pb, cap)}
                best = min(base.values(), key=lambda r: r.non_compulsory_bytes)
                t0, cpu0 = time.perf_counter(), time.process_time()  # CPU too: the machine may be shared
                res = divide_and_conquer(pb, cap, piece_ops=args.piece_ops, time_limit_s=args.time_limit,
                                         warm_start=best.plan, commit_ops=args.commit_ops, passes=args.passes,
                                         max_passes=args.max_passes, bound_nodes=args.bound_nodes,
                                         threads=args.threads)
                got = replay(graph, res.mapping, cap, ww).non_compulsory_bytes
                assert got == res.non_compulsory_bytes
                assert got <= best.non_compulsory_bytes
                assert res.best_bound <= got
                bb = best.non_compulsory_bytes
                bl = min(r.non_compulsory_bytes for r in literal.values())
                row = {"network": name, "with_weights": ww, "ops": pb.n_ops, "capacity_bytes": cap,
                       "cosma_dc_bytes": got, "lower_bound_bytes": int(res.best_bound), "gap": round(res.gap, 4),
                       "status": res.status, "pieces": res.meta.get("pieces", 0),
                       "pass_bytes": "/".join(str(b) for b in res.meta.get("pass_bytes", [])),
                       "search_nodes": res.meta.get("order_search", {}).get("nodes", 0),
                       "solve_s": round(time.perf_counter() - t0, 1), "solve_cpu_s": round(time.process_time() - cpu0, 1),
                       **{k: v.non_compulsory_bytes for k, v in base.items()}, "best_baseline_bytes": bb,
                       "reduction_pct": round(100 * (bb - got) / bb, 1) if bb else None,
                       **{k: v.non_compulsory_bytes for k, v in literal.items()},
                       "reduction_literal_pct": round(100 * (bl - got) / bl, 1) if bl else None}
                w.writerow(row)
                fh.flush()
                rows.append(row)
                print(row, flush=True)
    cols = FIELDS
    lines = ["# COSMA divide and conquer at M_R", "", f"Generated by `{command}`.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |" for r in rows]
    for key, what in (("reduction_pct", "the best offline-first baseline"),
                      ("reduction_literal_pct", "the best literal baseline (default order, online allocator)")):
        red = [r[key] for r in rows if r[key] is not None]
        if red:
            lines += ["", f"Mean reduction vs {what} over {len(red)} instances with a non-zero baseline: "
                      f"{sum(red) / len(red):.1f}%"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
