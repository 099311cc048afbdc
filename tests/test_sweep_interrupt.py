"""An interrupted sweep keeps every point that had finished: rows stream back point by point.

The evaluator leaves a marker file once a point's result exists; the sweep is interrupted
(SIGINT, what Ctrl-C sends) while chunks far larger than what has run are still in flight. The
rows on disk must then cover every marked point except those still on their way back, at most
one per worker. Before rows were streamed, a chunk's rows came back only with the whole chunk,
and an interrupt here lost every finished point.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelsim.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
from accelsim.sweep import run_sweep
spec = {"parameters": {"array.rows": {"range": {"start": 1, "stop": 300, "step": 1}}},
        "workloads": [{"gemm": [64, 32, 48]}], "evaluator": "tests.sweep_fixtures:slow"}
try:
    run_sweep(spec, sys.argv[1], executor=sys.argv[2], workers=2, chunk_size=150, allow_code=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("executor,in_flight", [("process", 2), ("serial", 1)])
def test_interrupt_loses_only_the_points_still_running(tmp_path, executor, in_flight):
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_TEST_SLEEP_S": "0.02",
           "ACCELSIM_TEST_DONE_DIR": str(done_dir)}
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), executor], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(os.listdir(done_dir)) < 20 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert child.poll() is None, child.communicate()
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    finished = {int(name) for name in os.listdir(done_dir)}
    raw = ResultStore(out).raw()
    on_disk = set(raw["array.rows"].tolist())
    assert len(finished) >= 20 and len(finished) < 300  # interrupted part-way, well inside a chunk
    assert on_disk <= finished and not raw["key"].duplicated().any()
    assert len(finished - on_disk) <= in_flight, (len(finished), len(on_disk))


_SIZES: list[int] = []
_REAL: list = []


def _recording(job, start, stop):
    """Module level, so Dask pickles it by reference and the sizes land in this process's list."""
    _SIZES.append(stop - start)
    return _REAL[-1](job, start, stop)


def test_dask_chunks_are_sized_to_a_time_target(monkeypatch, tmp_path):
    """Dask hands rows back per range, so ranges are sized to take about ``target_s`` each (the
    first ones single points, to measure): what an interrupt can lose is bounded in time."""
    from distributed import Client, LocalCluster

    from accelsim.sweep import SweepSpec, executors
    from accelsim.sweep.decode import PointSource
    from accelsim.sweep.evaluators import engine_fingerprint, get_evaluator
    from accelsim.sweep.rangework import Job, parquet_table
    from accelsim.sweep.worker import Context

    monkeypatch.setenv("ACCELSIM_TEST_SLEEP_S", "0.01")
    spec = SweepSpec.from_dict({"parameters": {"array.rows": {"range": {"start": 1, "stop": 120, "step": 1}}},
                                "workloads": [{"gemm": [64, 32, 48]}], "evaluator": "tests.sweep_fixtures:slow"},
                               allow_code=True)
    source = PointSource.of(spec, engine_fingerprint(get_evaluator(spec.evaluator.name, allow_code=True)))
    context = Context("tests.sweep_fixtures:slow", {"total_cycles": "float64"}, {}, ("array.rows",), True)
    columns = (("point", "int64"), ("key", "string"), ("status", "string"), ("error", "string"),
               ("workload", "string"), ("evaluator", "string"), ("array.rows", "int64"), ("total_cycles", "float64"))
    job = Job("t", context, source, frozenset(), columns, str(tmp_path))
    sizes = _SIZES
    sizes.clear()
    _REAL.append(executors.dask_range)
    monkeypatch.setattr(executors, "dask_range", _recording)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            Client(lc, set_as_default=False) as client:
        results = list(executors.dask_ranges(job, source.raw_count, client, target_s=0.1))
    keys = [k for r in results for k in parquet_table(r.part_bytes).column("key").to_pylist()]
    assert sorted(keys) == sorted(p.key for p in spec.points().points)  # each point exactly once
    assert sorted(k for r in results for k in r.keys) == sorted(keys)  # ... and reported for the manifest
    assert sizes[:4] == [1, 1, 1, 1]  # two per thread in flight, measured one point at a time
    # 0.1 s at >= 0.01 s a point: never more than 10 points a range (sleep is a lower bound on a point)
    assert max(sizes) <= 10 and max(sizes) > 1
