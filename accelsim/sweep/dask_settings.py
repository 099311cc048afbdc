"""Dask settings for a sweep cluster: Dask's housekeeping timers slowed down, its profiler off.

Why: with the defaults, an *idle* ``dask scheduler`` and two single-thread ``dask worker``
processes on localhost took 1.9% and 3.2% (mean) of a core, 8.4% of one core in all
(``results/dask_idle_cpu.md``, 20 s each, Dask 2026.8.0; an earlier 20 s run gave 12%). On a
two-core machine with two workers that comes out of the points, and it is part of what held Dask's
1 -> 2 worker speedup on costly points below 1.9x while the process pool reached it. The timers,
and what each alone changed in that run (% of one core, whole cluster, defaults 8.4):

- ``distributed.admin.tick.interval`` 20 ms -> 1 s (an event-loop health check: it feeds the
  "event loop was unresponsive for 3 s" warning and a tick-duration metric): 6.8;
- ``distributed.worker.profile.enabled`` off (a stack sample of every thread every 10 ms, for the
  dashboard's profile page, which a sweep never opens): 6.8;
- ``distributed.admin.system-monitor.interval`` 500 ms -> 5 s (CPU, memory and I/O readings for
  the dashboard) and ``distributed.worker.memory.monitor-interval`` 100 ms -> 1 s (the
  spill/pause/terminate check; a worker over its limit is still stopped, one second later): each
  alone within the run-to-run noise (9.2); kept because slowing them costs a sweep nothing. The
  first two together without these two were not measured.

All four together: 1.3% of one core (scheduler 0.6%, workers 0.35% each). Reproduce with
``python benchmarks/dask_idle_cpu.py``. None of them changes what a task computes, where it
runs, or how a dead worker's tasks are retried: heartbeats and the scheduler's failure detection
keep their defaults, and ``tests/test_sweep_dask_cli.py`` kills a worker mid-sweep with these
settings on and loses no point.

Where they go: a LocalCluster the caller starts inside ``config_set()``; a cluster started from the
command line with the variables of ``env()`` (``accelsim sweep dask-env`` prints them as shell
``export`` lines). A cluster someone else runs keeps its own settings: a sweep still runs there,
only with more overhead.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

SWEEP_DASK_CONFIG: Mapping[str, Any] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def env_name(key: str) -> str:
    """Dask's environment-variable spelling of a dotted config key (``DASK_`` + ``__`` per level)."""
    return "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split("."))


def env(config: Mapping[str, Any] = SWEEP_DASK_CONFIG) -> dict[str, str]:
    """The settings as environment variables for ``dask scheduler`` and ``dask worker``.
    Values are written the way Dask parses them back (``False``, ``1s``)."""
    return {env_name(k): str(v) for k, v in config.items()}


@contextlib.contextmanager
def config_set(config: Mapping[str, Any] = SWEEP_DASK_CONFIG) -> Iterator[None]:
    """Inside this block, a LocalCluster (its scheduler here, its workers through their nannies)
    is created with the sweep settings; they stay with it after the block."""
    import dask

    with dask.config.set(dict(config)):
        yield
