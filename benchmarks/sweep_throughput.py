"""Sweep scaling: points per second and the 1 -> 2 worker speedup of every executor, cheap and costly points.

Each configuration runs one sweep end to end through ``run_sweep`` into a fresh directory
(expansion, key hashing, evaluation, Parquet), *alone* and *cold*: every timed run is a fresh
Python process (``--one``), so no run inherits another's warm caches (the tiling mapper memoises
its searches, and pool workers forked from a warm parent used to skip most of the work of the
whole-model points while Dask's fresh worker processes did it all: the 2x "Dask overhead" once
reported here was that), and a Dask cluster exists only during its own run. Cluster start-up is
excluded from the time; pool start-up is included (paid once per sweep).

Executors: ``serial``; ``process`` (the local pool); ``dask-localcluster`` (a LocalCluster in the
sweep process, its scheduler on the sweep process's event loop); ``dask-scheduler`` (Dask as
deployed: ``dask scheduler`` and ``dask worker --no-nanny --nthreads 1`` started as separate
processes, ``benchmarks/dask_cli_cluster.py``). Both Dask deployments run with the sweep's Dask
settings (``accelsim.sweep.dask_settings``: housekeeping timers slowed, the profiler off; idle
CPU about six-fold lower, ``benchmarks/dask_idle_cpu.py``); ``--dask-defaults`` runs them with
Dask's defaults instead, to compare.

Workloads:

- ``cheap``: 24,000 systolic-GEMM points (array x dataflow x SRAM sizes x 20 BERT-base GEMMs at
  sequences 128-512; 4,800 with ``--small``), well under a millisecond each;
- ``simulate``: 576 whole-model points (about 8 s of work), ``simulate`` evaluator: GPT-2 prefill
  (sequence 256) and BERT-base prefill (sequence 128) on the tpu-v1 systolic preset with its
  array and SRAM swept;
- ``cosma``: 80 COSMA solves (about 16 s of work; CP-SAT, one thread, fixed seed) of one GPT-2
  prefill block (sequence 64-192) at scratchpad capacities of 2.00-2.19 x its largest tensor
  (``benchmarks/sweep_costly.py``). The evaluator is ``module:function``, so it declares no
  metric types and the parent evaluates one point to learn them before the workers start.

The costly sweeps are long enough (several seconds per worker) that the pool's start-up (forking
and warming the workers, ~0.1 s) and the last range's tail are a few percent of a run, not the
quarter they were with 20 COSMA points (4 s).

CPU accounting: ``parent_cpu_s`` is the sweep process's own CPU (the spec check, the probe, the
manifest, writing the part files Dask returns; with a LocalCluster its scheduler too;
``main_thread_cpu_s`` is the sweep code's own thread alone); ``cpu_s`` adds the workers' CPU (pool
workers: reaped children; Dask workers: ``getrusage`` in each worker before and after, via
``client.run``) and a separate scheduler's (``/proc/PID/stat``); ``parent_share`` = parent / total
is the part of the work that does not scale with workers, and what caps the 1 -> 2 ratio on a
machine with two cores.

Quietness: ``other_cpu_s`` is the CPU the whole machine spent during the run (``/proc/stat``) minus
``cpu_s``: other jobs, plus the LocalCluster's nanny processes. It is the direct measure of
neighbours (the load average is not: it counts the benchmark itself and lags a minute). Speedups
are given as the ratio of median rates (the statistic the targets are judged on) and of best
rates. Run::

    python benchmarks/sweep_throughput.py [--repeats 2] [--workloads cheap,simulate,cosma] [--small]
        [--executors process,dask-localcluster,dask-scheduler] [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import pandas as pd

from accelsim import tables
from accelsim.sweep import SweepSpec, run_sweep
from benchmarks.dask_cli_cluster import TICKS_PER_S, process_cpu_s

NAME = "sweep_throughput"
KiB = 1024
# The weight GEMMs of a BERT-base layer (d_model 768, FFN 3072; Devlin et al. 2019) at sequences
# 128-512: 20 GEMMs, so the cheap sweep is 24,000 points (~7 s of work), long enough that a
# cluster's fixed per-run costs (a few tenths of a second) do not decide the ratio; ``--small``
# keeps the 4,800 points of sequence 128 alone (~1.5 s of work), where they do.
SEQS = (128, 192, 256, 384, 512)


def bert_gemms(seqs: tuple[int, ...]) -> list[list[int]]:
    return [g for s in seqs for g in ([s, 768, 2304], [s, 768, 768], [s, 768, 3072], [s, 3072, 768])]


CONFIGS = [("serial", 1), ("process", 1), ("process", 2), ("dask-localcluster", 1), ("dask-localcluster", 2),
           ("dask-scheduler", 1), ("dask-scheduler", 2)]


def spec(workload: str, small: bool) -> SweepSpec:
    if workload == "cheap":
        sizes = [16, 32, 64, 128, 256]
        gemms = bert_gemms(SEQS[:1] if small else SEQS)
        return SweepSpec(name="cheap", hardware="tpu-v1", evaluator="systolic", workloads=[{"gemms": gemms}],
                         parameters={"array.rows": sizes, "array.cols": sizes, "array.dataflow": ["os", "ws", "is"],
                                     "sram.ifmap_bytes": [64 * KiB, 256 * KiB, 1024 * KiB, 4096 * KiB],
                                     "sram.filter_bytes": [64 * KiB, 1024 * KiB],
                                     "sram.ofmap_bytes": [64 * KiB, 1024 * KiB]})
    if workload == "simulate":
        sizes = [32, 128] if small else [32, 64, 128, 256]
        srams = [256 * KiB, 4096 * KiB] if small else [128 * KiB, 256 * KiB, 512 * KiB, 1024 * KiB, 2048 * KiB, 4096 * KiB]
        return SweepSpec(name="simulate", hardware="tpu-v1", evaluator="simulate",
                         workloads=[{"zoo": {"model": "gpt2", "phase": "prefill", "seq": 256}},
                                    {"zoo": {"model": "bert-base", "phase": "prefill", "seq": 128}}],
                         parameters={"array.rows": sizes, "array.cols": sizes, "array.dataflow": ["os", "ws", "is"],
                                     "sram.ifmap_bytes": srams})
    if workload == "cosma":
        # Capacities 2.0-2.2 x the largest tensor: every solve there costs about the same (~0.19 s
        # measured on this machine, all optimal); from 2.3 up the block fits and a solve is ~1 ms.
        caps = [2.0, 2.1] if small else [round(2.0 + 0.01 * i, 2) for i in range(20)]
        return SweepSpec.from_dict({"name": "cosma", "hardware": "tpu-v1", "evaluator": "benchmarks.sweep_costly:cosma",
                                    "parameters": {"options.capacity_x": caps},
                                    "workloads": [{"builder": "benchmarks.sweep_costly:block", "args": {"seq": s},
                                                   "label": f"gpt2-block-{s}"} for s in (64, 96, 128, 192)]},
                                   allow_code=True)
    raise SystemExit(f"unknown workload {workload!r}; allowed: cheap, simulate, cosma")


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (pool workers are reaped when the
    pool shuts down; Dask worker processes are not, so their CPU time is not visible here)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _self_cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _dask_workers_cpu_s(client) -> float:
    """CPU seconds of every Dask worker process so far (each reports its own ``getrusage``)."""
    return float(sum(client.run(_self_cpu_s).values()))


# Imported before the clock starts, in the sweep process, every Dask worker and a separate Dask
# scheduler (it imports accelsim to unpickle the first task: measured 1.25 s of its CPU): a
# long-lived worker or scheduler pays its imports once in its life, not per sweep, and pool workers inherit the sweep
# process's (fork). Caches are NOT warmed: every run does its work cold.
PREIMPORT = ("accelsim.sweep.rangework", "accelsim.simulate", "mappers.cosma_entry", "mappers.tiling",
             "workloads.models", "pyarrow.parquet")


def _preimport(evaluator: str) -> None:
    import importlib

    from accelsim.engines.registry import discover
    from accelsim.sweep.evaluators import get_evaluator
    from accelsim.sweep.rangework import import_engines

    for module in PREIMPORT:
        importlib.import_module(module)
    discover()
    import_engines(get_evaluator(evaluator, allow_code=True))


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; ``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS_PER_S


def _start_dask(executor: str, workers: int, tmp: Path, dask_defaults: bool) -> tuple:
    """(client, closer, scheduler pid or None) of a cluster that exists for one timed run, with the
    sweep's Dask settings unless ``dask_defaults``."""
    from distributed import Client

    if executor == "dask-localcluster":
        from distributed import LocalCluster

        from accelsim.sweep.dask_settings import config_set

        with contextlib.nullcontext() if dask_defaults else config_set():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster, set_as_default=False)
        return client, (lambda: (client.close(), cluster.close())), None
    from benchmarks.dask_cli_cluster import (
        START_TIMEOUT_S,
        CliCluster,
        environ_without_dask,
    )

    cli = CliCluster(tmp, workers, environ_without_dask(), cwd=ROOT, sweep_settings=not dask_defaults)
    try:
        client = Client(cli.address, timeout="20s", set_as_default=False)
        client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
    except BaseException:
        cli.close()
        raise
    return client, (lambda: (client.close(), cli.close())), cli.scheduler.pid


def timed(s: SweepSpec, executor: str, workers: int, dask_defaults: bool = False) -> dict:
    """One run of ``s``; call it in a fresh process (``--one``) so nothing is warm."""
    out = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    client = close = scheduler_pid = None
    kw: dict = {"executor": executor, "workers": workers, "allow_code": True}
    try:
        if executor.startswith("dask"):
            client, close, scheduler_pid = _start_dask(executor, workers, out, dask_defaults)
            kw = {"dask": client, "allow_code": True}
            client.run(_preimport, s.evaluator.name)
            if scheduler_pid:  # a fresh scheduler imports accelsim when it first unpickles a task
                client.run_on_scheduler(_preimport, s.evaluator.name)
        _preimport(s.evaluator.name)
        load_before = os.getloadavg()[0]
        w0 = _dask_workers_cpu_s(client) if client is not None else 0.0
        s0 = process_cpu_s(scheduler_pid) if scheduler_pid else 0.0
        busy0 = _machine_busy_s()
        c0, p0, m0, t0 = _cpu_s(), _self_cpu_s(), time.thread_time(), time.perf_counter()
        result = run_sweep(s, out / "sweep", **kw)
        wall, cpu, parent = time.perf_counter() - t0, _cpu_s() - c0, _self_cpu_s() - p0
        main_thread = time.thread_time() - m0
        busy = _machine_busy_s() - busy0
        scheduler = process_cpu_s(scheduler_pid) - s0 if scheduler_pid else 0.0
        if client is not None:
            cpu = parent + _dask_workers_cpu_s(client) - w0 + scheduler
        load_after = os.getloadavg()[0]
        table = result.table().drop(columns=["point"]).sort_values("key").reset_index(drop=True)
    finally:
        if close is not None:
            close()
        shutil.rmtree(out)
    assert result.computed == result.total, (result.computed, result.total)
    return {"points": result.total, "failed": result.failed, "wall_s": round(wall, 3),
            "points_per_s": round(result.total / wall, 2),
            "cpu_s": round(cpu, 3), "parent_cpu_s": round(parent, 3), "main_thread_cpu_s": round(main_thread, 3),
            "scheduler_cpu_s": round(scheduler, 3),
            "parent_share": round(parent / cpu, 3) if cpu > 0 else float("nan"),
            "other_cpu_s": round(max(0.0, busy - cpu), 3),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2), "_table": table}


def run_one(workload: str, executor: str, workers: int, small: bool, dask_defaults: bool) -> dict:
    """``timed`` in a fresh Python process: its row, and its table (for the same-table check)."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-one-") as tmp:
        result = Path(tmp) / "result"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{workload}:{executor}:{workers}",
               "--result", str(result)] + (["--small"] if small else []) + (["--dask-defaults"] if dask_defaults else [])
        subprocess.run(cmd, check=True, cwd=ROOT)
        row = json.loads(result.with_suffix(".json").read_text())
        row["_table"] = pd.read_parquet(result.with_suffix(".parquet"))
    return row


def _child(one: str, result: Path, small: bool, dask_defaults: bool) -> None:
    workload, executor, workers = one.split(":")
    row = timed(spec(workload, small), executor, int(workers), dask_defaults)
    row.pop("_table").to_parquet(result.with_suffix(".parquet"))
    result.with_suffix(".json").write_text(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration (interleaved)")
    parser.add_argument("--workloads", default="cheap,simulate,cosma", help="comma list of cheap, simulate, cosma")
    parser.add_argument("--executors", default=",".join(sorted({e for e, _ in CONFIGS})),
                        help="comma list of " + ", ".join(sorted({e for e, _ in CONFIGS})))
    parser.add_argument("--small", action="store_true", help="smaller grids, for a quick look")
    parser.add_argument("--dask-defaults", action="store_true",
                        help="run Dask with its default settings instead of accelsim.sweep.dask_settings (to compare)")
    parser.add_argument("--from-csv", type=Path, help="re-render the report from a CSV this benchmark wrote")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: WORKLOAD:EXECUTOR:WORKERS in this process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    tables.add_output_options(parser, NAME)
    args = parser.parse_args()
    if args.one:
        return _child(args.one, args.result, args.small, args.dask_defaults)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    executors = {e.strip() for e in args.executors.split(",")}
    unknown = executors - {e for e, _ in CONFIGS}
    if unknown:
        parser.error(f"unknown executor(s) {sorted(unknown)}; allowed: {sorted({e for e, _ in CONFIGS})}")
    if args.from_csv:
        df = pd.read_csv(args.from_csv)
        text = report(df)
        print(text)
        for d in tables.output_dirs(args, ROOT):
            (d / f"{NAME}.md").write_text(text)
        return
    rows = []
    configs = [c for c in CONFIGS if c[0] in executors | {"serial"}]  # serial: the reference table
    for workload in args.workloads.split(","):
        spec(workload.strip(), args.small)  # an unknown name fails here, before any run
        reference = None
        for rep in range(args.repeats):  # configurations interleaved, so a load spike hits all of them
            for executor, workers in configs:
                r = run_one(workload.strip(), executor, workers, args.small, args.dask_defaults)
                table = r.pop("_table")
                if reference is None:
                    reference = table
                rows.append({"workload": workload, "executor": executor, "workers": workers, "repeat": rep,
                             "dask_settings": "defaults" if args.dask_defaults else "sweep", **r,
                             "same_table": bool(table.equals(reference))})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    text = report(df)
    print(text)
    for d in tables.output_dirs(args, ROOT):
        df.to_csv(d / f"{NAME}.csv", index=False)
        (d / f"{NAME}.md").write_text(text)


def report(df: pd.DataFrame) -> str:
    for column in ("main_thread_cpu_s", "parent_share", "other_cpu_s"):  # absent from CSVs of older versions
        if column not in df:
            df[column] = float("nan")
    df["scheduler_cpu_s"] = df.get("scheduler_cpu_s", pd.Series(0.0, index=df.index)).fillna(0.0)
    # what does not scale with workers: the sweep process and a separate scheduler
    df["overhead_share"] = (df.parent_cpu_s + df.scheduler_cpu_s) / df.cpu_s.where(df.cpu_s > 0)
    mismatches = [f"{r.workload}: {r.executor} x{r.workers} (repeat {r.repeat}) differs from the serial table"
                  for r in df.itertuples() if not r.same_table]
    best = df.groupby(["workload", "executor", "workers"], sort=False).agg(
        points=("points", "first"), runs=("points", "size"), best_points_per_s=("points_per_s", "max"),
        median_points_per_s=("points_per_s", "median"), cpu_s_median=("cpu_s", "median"),
        parent_cpu_s_median=("parent_cpu_s", "median"), main_thread_cpu_s_median=("main_thread_cpu_s", "median"),
        scheduler_cpu_s_median=("scheduler_cpu_s", "median"), parent_share_median=("parent_share", "median"),
        overhead_share_median=("overhead_share", "median"), other_cpu_s_max=("other_cpu_s", "max")).reset_index()
    best = best.round(3)
    serial = best[best.executor == "serial"].set_index("workload")
    best["ms_per_point_serial"] = best.workload.map(1e3 * serial.cpu_s_median / serial.points).round(3)
    speed = []
    for (workload, executor), g in best[best.executor != "serial"].groupby(["workload", "executor"], sort=False):
        if set(g.workers) != {1, 2}:
            continue
        one, two = (g[g.workers == n].iloc[0] for n in (1, 2))
        share = float(two.overhead_share_median)
        speed.append({"workload": workload, "executor": executor,
                      "speedup_median": round(two.median_points_per_s / one.median_points_per_s, 2),
                      "speedup_best": round(two.best_points_per_s / one.best_points_per_s, 2),
                      # The same points cost the workers the same CPU W with 1 or 2 of them; the
                      # parent's P runs on the second core with 1 worker and shares both with 2:
                      # t1 = W, t2 >= (W + P) / 2, so t1 / t2 <= 2 (1 - share), share = P / (W + P).
                      "cap_from_overhead_cpu": round(2 * (1 - share), 2), "overhead_share_2": round(share, 3),
                      "ms_per_point": float(one.ms_per_point_serial)})
    speed = pd.DataFrame(speed)
    wall = float(df.wall_s.sum())
    other = float(df.other_cpu_s.sum())
    worst = df.loc[df.other_cpu_s.idxmax()] if df.other_cpu_s.notna().any() else None
    cores = os.cpu_count() or 1
    quiet = ("not recorded (a CSV of an older version)" if worst is None else
             f"{other:.1f} CPU s over {wall:.0f} s of runs ({100 * other / (wall * cores):.1f}% of the {cores} "
             f"cores); the busiest run's neighbours took {worst.other_cpu_s:.2f} CPU s in {worst.wall_s:.1f} s "
             f"({worst.workload}, {worst.executor} x{worst.workers})")
    used = set(df.dask_settings) if "dask_settings" in df else {"defaults"}  # older CSVs: before the settings
    settings = {frozenset({"defaults"}): "Dask's defaults (`--dask-defaults`)",
                frozenset({"sweep"}): "`accelsim.sweep.dask_settings` (`accelsim sweep dask-env`: housekeeping "
                                      "timers slowed, profiler off)"}.get(frozenset(used),
                                                                         "mixed: see the `dask_settings` column")
    lines = [
        "# Sweep scaling: 1 -> 2 workers, every executor, cheap and costly points", "",
        ("Each run was a fresh Python process (nothing warm from another run) and ran alone (a Dask cluster only "
         "exists during its own run), end to end through `run_sweep`. Command: `python "
         "benchmarks/sweep_throughput.py --write-results`; raw runs in `sweep_throughput.csv`. `parent_cpu_s` is "
         "the sweep process's own CPU (spec check, probe, manifest, writing the part files Dask returns; with a "
         "LocalCluster its scheduler too); `cpu_s` adds the workers' CPU and a separate scheduler's "
         "(`scheduler_cpu_s`); `parent_share` = parent / total; `main_thread_cpu_s` is the sweep code's own thread. "
         "Workers decode their own points from index ranges, hash keys, evaluate and (pool) write their own part "
         "files. `dask-scheduler` is Dask as deployed: `dask scheduler` and `dask worker --no-nanny` processes. "
         f"Dask settings: {settings}."), "",
        tables.markdown_table(best, float_format=str), "",
        ("Speedup from 1 to 2 workers: `speedup_median` = median rate with 2 workers / median rate with 1 (what "
         "the targets are judged on), `speedup_best` the same with best rates (sensitive to one lucky run). "
         "`cap_from_overhead_cpu` = 2 x (1 - share of all CPU the sweep process and a separate scheduler used with 2 "
         "workers) is the most two idle cores allow: the part of the ratio the sweep code controls."), "",
        tables.markdown_table(speed, float_format=str), "",
        (f"**Quietness.** CPU spent on the machine outside the measured processes (`other_cpu_s`, from "
        f"`/proc/stat`; it includes the LocalCluster's nannies): {quiet}."),
        "**Same table.** " + ("; ".join(mismatches) if mismatches else
                              "Every executor's table (sorted by key, point index dropped) equals the serial one."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
