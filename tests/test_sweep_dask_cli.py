"""Dask as deployed: a ``dask scheduler`` and ``dask worker`` processes started from the command line
on localhost (not a LocalCluster inside the test), one of them killed mid-sweep.

What must hold: the table is the serial run's table, whatever ran it, and a worker that dies with
points in flight loses nothing: the scheduler hands its chunk to the surviving worker, and every
point ends ``ok`` exactly once. Loopback only; bounded in time; the processes are killed in the
fixture's ``finally`` whatever the test did.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from accelsim.sweep import SweepSpec, load_results, run_sweep
from benchmarks.dask_cli_cluster import START_TIMEOUT_S, CliCluster

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"name": "dask-cli", "hardware": "tpu-v1",
        "parameters": {"array.rows": {"range": {"start": 4, "stop": 123, "step": 1}}},
        "workloads": [{"gemm": [64, 32, 48]}], "evaluator": "tests.sweep_fixtures:slow"}


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory):
    """Yields (cluster, client, done_dir); everything started here is stopped in ``finally``.
    Module-scoped to pay the start-up once: the table test runs first, the kill test last."""
    from distributed import Client

    tmp_path = tmp_path_factory.mktemp("dask-cli")
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "ACCELSIM_TEST_SLEEP_S": "0.02", "ACCELSIM_TEST_DONE_DIR": str(done_dir)}
    cluster = client = None
    try:
        try:
            cluster = CliCluster(tmp_path, 2, env, cwd=ROOT)
        except (OSError, RuntimeError) as err:
            pytest.skip(f"cannot start a dask scheduler on localhost here: {err}")
        client = Client(cluster.address, timeout="10s", set_as_default=False)
        client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield cluster, client, done_dir
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _serial_table(tmp_path: Path, spec: SweepSpec) -> pd.DataFrame:
    saved = os.environ.pop("ACCELSIM_TEST_SLEEP_S", None)  # the serial reference need not wait
    try:
        return load_results(run_sweep(spec, tmp_path / "serial", executor="serial").out_dir)
    finally:
        if saved is not None:
            os.environ["ACCELSIM_TEST_SLEEP_S"] = saved


def test_serial_process_and_a_real_scheduler_give_identical_tables(tmp_path, cli_cluster):
    cluster, _, _ = cli_cluster
    spec = SweepSpec.from_dict({**SPEC, "parameters": {"array.rows": [8, 16, 24, 32], "array.cols": [8, 32],
                                                       "array.dataflow": ["os", "ws", "is"]},
                                "workloads": [{"gemm": [64, 48, 40]}, {"gemm": [17, 300, 9]}],
                                "evaluator": "systolic"})
    serial = _serial_table(tmp_path, spec)
    process = load_results(run_sweep(spec, tmp_path / "process", executor="process", workers=2).out_dir)
    dask = load_results(run_sweep(spec, tmp_path / "dask", dask=cluster.address).out_dir)
    assert len(serial) == 48 and (serial["status"] == "ok").all()
    pd.testing.assert_frame_equal(serial, process)
    pd.testing.assert_frame_equal(serial, dask)


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, cli_cluster):
    cluster, client, done_dir = cli_cluster
    for name in os.listdir(done_dir):
        os.remove(done_dir / name)
    spec = SweepSpec.from_dict(SPEC, allow_code=True)
    n_points = len(spec.points().points)
    victim = cluster.workers[0]
    address = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("name") == "w0")
    killed_after: list[int] = []
    in_flight: list[int] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(os.listdir(done_dir)) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        in_flight.append(len(client.processing([address]).get(address, ())))  # chunks it held
        killed_after.append(len(os.listdir(done_dir)))
        victim.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    result = run_sweep(spec, tmp_path / "dask", dask=cluster.address)
    killer.join(5)
    assert victim.poll() is not None and killed_after and killed_after[0] < n_points  # died part-way
    assert in_flight and in_flight[0] >= 1  # ... holding points, which had to be retried elsewhere
    table = load_results(result.out_dir)
    assert result.failed == 0 and (table["status"] == "ok").all(), table[table.status != "ok"].head()
    assert len(table) == n_points and not table["key"].duplicated().any()
    pd.testing.assert_frame_equal(table, _serial_table(tmp_path, spec))
