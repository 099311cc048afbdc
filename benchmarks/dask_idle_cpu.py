"""Idle CPU of a Dask sweep cluster: Dask's defaults, each sweep setting alone, and all of them.

Why this exists: a two-core machine with two single-thread workers has no spare core for Dask's
housekeeping, so every percent a scheduler or worker burns while idle comes out of the points.
This measures that percent directly, without points (which would bury it in their own noise):
a ``dask scheduler`` and ``--workers`` ``dask worker --no-nanny`` processes are started on
localhost, a client connects and waits until they are settled, and the CPU each process spends
over ``--seconds`` is read from ``/proc/PID/stat``. One cluster per configuration, one after the
other. The settings are those of ``accelsim.sweep.dask_settings``. Run::

    python benchmarks/dask_idle_cpu.py [--seconds 20] [--workers 2] [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables
from accelsim.sweep.dask_settings import SWEEP_DASK_CONFIG, env
from benchmarks.dask_cli_cluster import (
    START_TIMEOUT_S,
    CliCluster,
    environ_without_dask,
    process_cpu_s,
)

NAME = "dask_idle_cpu"
SETTLE_S = 3.0  # after the workers register: their start-up imports are not idle time


def idle_percent(config: dict, workers: int, seconds: float) -> list[float]:
    """% of one core each process (scheduler first, then the workers) spent over ``seconds``."""
    from distributed import Client

    with tempfile.TemporaryDirectory(prefix="dask-idle-") as tmp:
        cluster = CliCluster(Path(tmp), workers, {**environ_without_dask(), **env(config)}, cwd=ROOT, sweep_settings=False)
        client = None
        try:
            client = Client(cluster.address, timeout="20s", set_as_default=False)
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
            time.sleep(SETTLE_S)
            pids = [p.pid for p in cluster.procs]
            before = [process_cpu_s(p) for p in pids]
            time.sleep(seconds)
            after = [process_cpu_s(p) for p in pids]
        finally:
            if client is not None:
                client.close()
            cluster.close()
    return [round(100 * (b - a) / seconds, 2) for a, b in zip(before, after)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--seconds", type=float, default=20.0, help="idle time measured per configuration")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes (one thread each)")
    tables.add_output_options(parser, NAME)
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600:
        parser.error("--seconds must be in (0, 3600]")
    if not 1 <= args.workers <= 16:  # a typo must not start hundreds of worker processes
        parser.error("--workers must be 1-16")
    import distributed
    import pandas as pd

    configs = [("Dask defaults", {})] + [(f"only {k}", {k: v}) for k, v in SWEEP_DASK_CONFIG.items()]
    configs.append(("all sweep settings", SWEEP_DASK_CONFIG))
    rows = []
    for label, config in configs:
        cpu = idle_percent(config, args.workers, args.seconds)
        rows.append({"settings": label, "scheduler_pct": cpu[0], "worker_pct_mean": round(sum(cpu[1:]) / args.workers, 2),
                     "total_pct_of_one_core": round(sum(cpu), 2)})
        print(rows[-1], file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    text = "\n".join([
        "# Idle CPU of a Dask sweep cluster", "",
        (f"`python benchmarks/dask_idle_cpu.py --seconds {args.seconds:g} --workers {args.workers}`: one "
         f"`dask scheduler` and {args.workers} `dask worker --no-nanny --nthreads 1` processes on localhost, idle "
         f"(a client connected), CPU over {args.seconds:g} s from `/proc/PID/stat`, as % of one core. Dask "
         f"{distributed.__version__}, {os.cpu_count()} cores; load average before the last run "
         f"{os.getloadavg()[0]:.2f}."), "",
        tables.markdown_table(df, float_format=str), ""])
    print(text)
    for d in tables.output_dirs(args, ROOT):
        df.to_csv(d / f"{NAME}.csv", index=False)
        (d / f"{NAME}.md").write_text(text)


if __name__ == "__main__":
    main()
