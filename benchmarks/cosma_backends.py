"""CP-SAT vs HiGHS vs CBC on identical COSMA instances (same model, same warm start, same limit).

Usage: ``python benchmarks/cosma_backends.py [--time-limit 30] [--threads 2] [--out DIR | --write-results]``;
writes ``cosma_backends.csv``/``.md`` into ``--out`` (default under the system temp dir), or into
``results/`` with ``--write-results``. Every back-end runs in this process (HiGHS through highspy,
CBC through PuLP's CBC binary; see ``mappers/milp.py``).
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

from mappers.baselines import best_baseline  # noqa: E402
from mappers.cosma import solve_cosma  # noqa: E402
from mappers.memory_problem import MemoryProblem  # noqa: E402
from tests.cosma_graphs import random_dag, tiny_graph  # noqa: E402

SOLVERS = ("cpsat", "highs", "cbc")


def instances():
    yield "tiny (PAPERS.md), free order, 200 B", MemoryProblem.from_graph(tiny_graph()), 200, "full"
    for seed in range(4):
        ops, sizes = random_dag(300 + seed, n_ops=7, max_size=20, n_sources=2)
        pb = MemoryProblem.from_lists(f"random{seed}", ops, sizes)
        yield f"random DAG {seed} (7 ops), free order, M_R", pb, pb.m_r, "full"
    from workloads.cnn import build_network

    for net in ("resnet50", "r2plus1d-18", "deeplabv3-resnet50"):
        pb = MemoryProblem.from_graph(build_network(net), True)
        for mode in ("fixed", "full"):
            yield f"{net} + weights, {mode} order, M_R", pb, pb.m_r, mode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    tables.add_output_options(ap, "cosma_backends")
    args = ap.parse_args()
    if args.time_limit <= 0:
        ap.error("--time-limit must be positive")
    out_dir = tables.primary_output_dir(args, ROOT)
    out = out_dir / "cosma_backends"
    rows = []
    fields = ["instance", "solver", "non_compulsory_bytes", "lower_bound_bytes", "status", "gap", "solve_s",
              "warm_start_bytes"]
    with out.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        for name, pb, cap, mode in instances():
            base = best_baseline(pb, cap)
            for solver in SOLVERS:
                t0 = time.perf_counter()
                r = solve_cosma(pb, cap, mode=mode, solver=solver, time_limit_s=args.time_limit,
                                warm_start=base.plan, threads=args.threads)
                row = {"instance": name, "solver": solver, "non_compulsory_bytes": r.non_compulsory_bytes,
                       "lower_bound_bytes": r.best_bound,
                       "status": r.status, "gap": None if r.gap is None else round(r.gap, 4),
                       "solve_s": round(time.perf_counter() - t0, 2), "warm_start_bytes": base.non_compulsory_bytes}
                w.writerow(row)
                fh.flush()
                rows.append(row)
                print(row, flush=True)
    lines = ["# COSMA back-ends on identical instances", "",
             f"`python benchmarks/cosma_backends.py --time-limit {args.time_limit:g} --threads {args.threads}`; same "
             "model, warm start and time limit for each back-end.", "",
             "| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(str(r[f]) for f in fields) + " |" for r in rows]
    summary = []
    for s in SOLVERS:
        mine = [r for r in rows if r["solver"] == s]
        summary.append(f"| {s} | {sum(r['status'] == 'optimal' for r in mine)}/{len(mine)} | "
                       f"{sum(r['solve_s'] for r in mine):.1f} |")
    lines += ["", "| solver | proved optimal | total seconds |", "|---|---|---|", *summary]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
