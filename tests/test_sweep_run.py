"""Sweep execution: executors agree, failures are rows, interrupted sweeps resume without loss."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from accelsim.engines.systolic import simulate_gemm, simulate_graph
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import GemmShape
from accelsim.sweep import SweepSpec, load_results, run_sweep, sweep_status
from accelsim.sweep.store import ResultStore
from workloads.examples import transformer_layer_gemms

ROOT = Path(__file__).resolve().parents[1]

SYSTOLIC = {
    "name": "systolic-small",
    "hardware": "tpu-v1",
    "parameters": {"array.rows": [8, 16, 32], "array.cols": [8, 32], "array.dataflow": ["os", "ws", "is"],
                   "sram.ifmap_bytes": [4096, 65536]},
    "workloads": [{"gemm": [64, 48, 40]}, {"transformer_layer": {"seq": 32, "d_model": 64, "d_ff": 128, "heads": 2}}],
    "evaluator": "systolic",
    "derived": {"pe_count": "array.rows * array.cols"},
}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        with Client(lc, set_as_default=False) as client:
            yield client


def test_serial_process_and_localcluster_give_identical_tables(tmp_path, cluster):
    spec = SweepSpec.from_dict(SYSTOLIC)
    serial = run_sweep(spec, tmp_path / "serial", executor="serial")
    process = run_sweep(spec, tmp_path / "process", executor="process", workers=2, chunk_size=5)
    dask = run_sweep(spec, tmp_path / "dask", dask=cluster, chunk_size=7)
    a, b, c = (load_results(r.out_dir) for r in (serial, process, dask))
    assert len(a) == serial.total == 72 and (a["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # pandas reads the directory directly: same rows, same columns
    raw = pd.read_parquet(tmp_path / "process")
    pd.testing.assert_frame_equal(raw.sort_values("point").reset_index(drop=True), a)


def test_rows_are_what_the_engine_computes(tmp_path):
    """Independent check of the plumbing: each row equals a direct engine call on that design."""
    spec = SweepSpec.from_dict(SYSTOLIC)
    df = load_results(run_sweep(spec, tmp_path, executor="serial").out_dir)
    base = load_hardware("tpu-v1")
    graph = transformer_layer_gemms(seq=32, d_model=64, d_ff=128, heads=2)
    for _, row in df.sample(12, random_state=0).iterrows():
        hw = base.model_copy(update={
            "array": base.array.model_copy(update={"rows": row["array.rows"], "cols": row["array.cols"],
                                                   "dataflow": row["array.dataflow"]}),
            "sram": base.sram.model_copy(update={"ifmap_bytes": row["sram.ifmap_bytes"]})})
        ref = simulate_gemm(GemmShape(64, 48, 40), hw) if row["workload"] == "gemm-64x48x40" \
            else simulate_graph(graph, hw).totals
        assert row["total_cycles"] == ref["total_cycles"]
        assert row["sram_reads_filter"] == ref["sram_reads"]["filter"]
        assert row["dram_bytes_ofmap"] == ref["dram_bytes"]["ofmap"]
        assert row["overall_utilization"] == ref["overall_utilization"]
        assert row["pe_count"] == row["array.rows"] * row["array.cols"]
    assert str(df["total_cycles"].dtype) == "int64"


FLAKY = {
    "parameters": {"array.rows": [8, 24, 40, 56, 64]},
    "workloads": [{"gemm": [32, 16, 24]}, {"gemm": [8, 8, 8]}],
    "evaluator": {"name": "tests.sweep_fixtures:flaky", "options": {"kill": True}},
}


@pytest.mark.parametrize("executor", ["serial-safe", "process", "dask"])
def test_failing_points_are_recorded_and_the_sweep_completes(tmp_path, executor, cluster):
    spec = dict(FLAKY)
    if executor == "serial-safe":  # a point that kills the process cannot be survived in-process
        spec = {**FLAKY, "evaluator": "tests.sweep_fixtures:flaky"}
    kw = {"executor": "serial"} if executor == "serial-safe" else \
        {"executor": "process", "workers": 2, "chunk_size": 3} if executor == "process" else {"dask": cluster}
    if executor == "dask":
        spec = {**FLAKY, "evaluator": "tests.sweep_fixtures:flaky"}  # threads: a kill would end pytest
    result = run_sweep(SweepSpec.from_dict(spec, allow_code=True), tmp_path, **kw)
    df = load_results(tmp_path)
    assert len(df) == result.total == 10
    by_rows = df.groupby("array.rows")["status"].agg(set).to_dict()
    assert by_rows[24] == {"error"} and by_rows[40] == {"infeasible"}
    assert by_rows[8] == {"ok"} and by_rows[64] == {"ok"}
    assert by_rows[56] == ({"error"} if executor == "process" else {"ok"})
    errors = df[df["status"] != "ok"]
    assert errors["error"].str.len().gt(0).all() and errors["total_cycles"].isna().all()
    assert df.loc[df["array.rows"] == 24, "error"].str.contains("RuntimeError: rows=24 is cursed").all()
    if executor == "process":
        assert df.loc[df["array.rows"] == 56, "error"].str.contains("WorkerDied").all()
    status = sweep_status(tmp_path)
    assert status["total"] == 10 and status["failed"] == result.failed and status["pending"] == 0
    assert len(pd.read_parquet(tmp_path)) == 10  # error and ok rows share one schema
    # a re-run skips failed points; retry_failed re-runs exactly them
    again = run_sweep(SweepSpec.from_dict(spec, allow_code=True), tmp_path, **kw)
    assert again.computed == 0 and again.already_done == 10
    retried = run_sweep(SweepSpec.from_dict(spec, allow_code=True), tmp_path, retry_failed=True, **kw)
    assert retried.computed == result.failed
    store = ResultStore(tmp_path)
    assert store.raw()["key"].duplicated().sum() == result.failed  # the retries' rows
    before = load_results(tmp_path)
    store.compact()
    assert not store.raw()["key"].duplicated().any()
    pd.testing.assert_frame_equal(load_results(tmp_path), before)


def test_resume_computes_only_what_is_missing(tmp_path):
    full = SweepSpec.from_dict({**SYSTOLIC, "parameters": {**SYSTOLIC["parameters"], "array.rows": [8, 16]}})
    part = SweepSpec.from_dict(SYSTOLIC)
    first = run_sweep(full, tmp_path / "d", executor="serial")
    second = run_sweep(part, tmp_path / "d", executor="serial")  # the grown spec reuses the old points
    assert second.already_done == first.total and second.computed == second.total - first.total
    reference = run_sweep(part, tmp_path / "ref", executor="serial")
    pd.testing.assert_frame_equal(load_results(tmp_path / "d"), load_results(reference.out_dir))
    assert not ResultStore(tmp_path / "d").raw()["key"].duplicated().any()
    # compaction keeps the table and leaves one part file
    store = ResultStore(tmp_path / "d")
    before = load_results(tmp_path / "d")
    assert len(store.parts()) > 1 and store.compact() > 1 and len(store.parts()) == 1
    pd.testing.assert_frame_equal(load_results(tmp_path / "d"), before)


SLOW = {
    "name": "slow",
    "parameters": {"array.rows": {"range": {"start": 1, "stop": 300, "step": 1}}},
    "workloads": [{"gemm": [64, 32, 48]}],
    "evaluator": "tests.sweep_fixtures:slow",
}


# SIGTERM goes through the CLI's handler into the same KeyboardInterrupt path Ctrl-C (SIGINT) takes;
# SIGKILL gives the sweep no chance to flush, so only the periodic flushes protect the work.
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_sweep_resumes_without_recomputing_or_losing_points(tmp_path, sig):
    spec_path = tmp_path / "slow.yaml"
    spec_path.write_text(yaml.safe_dump(SLOW))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_TEST_SLEEP_S": "0.02"}
    child = subprocess.Popen([sys.executable, "-m", "accelsim", "sweep", "run", str(spec_path), "--out", str(out),
                              "--workers", "2", "--no-progress", "--allow-code"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, child.communicate()
    child.send_signal(sig)
    _, stderr = child.communicate(timeout=30)
    if sig != signal.SIGKILL:
        assert child.returncode == 130, stderr
        assert b"interrupted" in stderr and b"Traceback" not in stderr
    on_disk = ResultStore(out).statuses()
    assert 0 < len(on_disk) < 300
    resumed = run_sweep(SweepSpec.from_dict(SLOW, allow_code=True), out, executor="serial")
    # nothing finished is recomputed, nothing is lost
    assert resumed.already_done == len(on_disk)
    assert resumed.computed == 300 - len(on_disk)
    raw = ResultStore(out).raw()
    assert not raw["key"].duplicated().any() and len(raw) == 300
    reference = run_sweep(SweepSpec.from_dict(SLOW, allow_code=True), tmp_path / "ref", executor="serial")
    pd.testing.assert_frame_equal(load_results(out), load_results(reference.out_dir))


def test_unreachable_dask_scheduler_fails_before_any_work(tmp_path):
    with pytest.raises(AccelsimError, match="cannot reach the Dask scheduler"):
        run_sweep(SweepSpec.from_dict(SYSTOLIC), tmp_path / "x", dask="tcp://127.0.0.1:9")
    assert not (tmp_path / "x").exists()
    with pytest.raises(AccelsimError, match="scheduler address"):
        run_sweep(SweepSpec.from_dict(SYSTOLIC), tmp_path / "x", dask="localhost")


def test_dask_address_with_other_scheme_is_one_error(tmp_path):
    for address in ("tls://127.0.0.1:9", "foo://x:1"):
        with pytest.raises(AccelsimError, match="unsupported scheme") as info:
            run_sweep(SweepSpec.from_dict(SYSTOLIC), tmp_path / "x", dask=address)
        assert info.value.field == "--dask" and "\n" not in str(info.value)


def test_dask_client_failure_of_any_type_is_one_error():
    from accelsim.sweep.run import _client_within

    class Broken:
        def __init__(self, *args, **kwargs):
            raise TypeError("TLS expects a `ssl_context` argument\nsecond line")

    with pytest.raises(AccelsimError, match="TypeError: TLS expects") as info:
        _client_within(Broken, "tcp://h:1", 1.0)
    assert "second line" not in str(info.value)


def test_dask_port_that_never_answers_is_bounded():
    """A port that accepts TCP but never speaks Dask (the reviewer's case was an http.server)."""
    import socket

    from accelsim.sweep.run import connect_dask

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        with pytest.raises(AccelsimError) as info:
            connect_dask(f"tcp://127.0.0.1:{port}", timeout_s=1.0)
    assert info.value.field == "--dask"


def test_bad_arguments_fail_before_any_work(tmp_path):
    spec = SweepSpec.from_dict(SYSTOLIC)
    for kw, needle in [({"executor": "threads"}, "serial, process, dask"), ({"workers": 0}, "at least 1"),
                       ({"executor": "dask"}, "scheduler address")]:
        with pytest.raises(AccelsimError, match=needle):
            run_sweep(spec, tmp_path / "x", **kw)
    with pytest.raises(AccelsimError, match="unknown metric 'cycles'"):
        run_sweep(SweepSpec.from_dict({**SYSTOLIC, "metrics": ["cycles"]}), tmp_path / "x")
    with pytest.raises(AccelsimError, match="unknown name 'bogus'"):
        run_sweep(SweepSpec.from_dict({**SYSTOLIC, "derived": {"a": "bogus * 2"}}), tmp_path / "x")
    with pytest.raises(AccelsimError, match="unknown evaluator"):
        run_sweep(SweepSpec.from_dict({**SYSTOLIC, "evaluator": "nope"}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_probe_learns_columns_and_a_broken_setup_is_one_error(tmp_path):
    """An evaluator that declares no metrics has its columns learned from a first point (kept, not
    recomputed); if every probed point fails, that is one error before the store fills with it."""
    spec = SweepSpec.from_dict({**FLAKY, "evaluator": "tests.sweep_fixtures:flaky"}, allow_code=True)
    result = run_sweep(spec, tmp_path / "ok", executor="serial")
    assert result.computed == result.total == 10
    assert {"total_cycles", "sram_reads_ifmap", "overall_utilization"} <= set(load_results(tmp_path / "ok").columns)
    with pytest.raises(AccelsimError, match="probed points all failed.*ImportError"):
        run_sweep(SweepSpec.from_dict({**FLAKY, "evaluator": "tests.sweep_fixtures:broken"}, allow_code=True), tmp_path / "bad")
    assert not list((tmp_path / "bad").glob("part-*"))


def _cli(capsys, *args):
    from accelsim.cli import main

    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=done.value.code, out=captured.out, err=captured.err)


def test_cli_run_status_and_errors(tmp_path, capsys, cluster):
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(yaml.safe_dump({**SYSTOLIC, "parameters": {"array.rows": [8, 16]}}))
    run = _cli(capsys, "sweep", "run", spec_path, "--out", tmp_path / "o", "--executor", "serial")
    assert run.returncode == 0, run.err
    status = _cli(capsys, "sweep", "status", tmp_path / "o")
    assert "4 points: 4 done, 0 failed" in status.out
    on_dask = _cli(capsys, "sweep", "run", spec_path, "--out", tmp_path / "d", "--dask", cluster.scheduler.address)
    assert on_dask.returncode == 0 and "4 computed" in on_dask.out, on_dask.err
    pd.testing.assert_frame_equal(load_results(tmp_path / "d"), load_results(tmp_path / "o"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SYSTOLIC, "parameters": {"array.rowz": [8]}}))
    for args, needle in [(("sweep", "run", bad), "array.rows"),
                         (("sweep", "run", spec_path, "--dask", "tcp://127.0.0.1:9"), "cannot reach"),
                         (("sweep", "run", spec_path, "--executor", "mpi"), "serial, process, dask"),
                         (("sweep", "status", tmp_path), "not a sweep results directory")]:
        r = _cli(capsys, *args)
        assert r.returncode == 2 and needle in r.err and "Traceback" not in r.err, r.err


def test_attention_evaluator_rows_equal_direct_engine_calls(tmp_path):
    from accelsim.engines.spatial import report
    from mappers.fusemax import mapped_graph, published_mapping
    from workloads.attention import attention_model

    spec = SweepSpec.from_dict({
        "hardware": "fusemax-cloud", "parameters": {"options.design": ["fusemax", "arch", "bogus"]},
        "workloads": [{"attention": {"model": "bert", "seq": 1024, "batch": 1}}], "evaluator": "attention"})
    df = load_results(run_sweep(spec, tmp_path, executor="serial").out_dir).set_index("options.design")
    hw, shape = load_hardware("fusemax-cloud"), attention_model("bert").shape(1024, batch=1)
    for design in ("fusemax", "arch"):
        mapping = published_mapping(design, hw, shape)
        ref = report(mapped_graph(shape, mapping), hw, mapping).totals
        assert df.loc[design, "latency_cycles"] == ref["latency_cycles"]
        assert df.loc[design, "dram_bytes"] == ref["dram_bytes"]
    assert df.loc["bogus", "status"] == "error" and "allowed: unfused" in df.loc["bogus", "error"]


def test_ctrl_c_before_the_manifest_exits_130_interrupted(tmp_path, monkeypatch):
    """Interrupted while the spec is still expanding: no manifest yet, still 'interrupted', 130."""
    import accelsim.sweep
    from tests.cli_helper import cli_in_process

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(accelsim.sweep, "run_sweep", interrupted)
    spec = Path(__file__).resolve().parents[1] / "accelsim" / "sweep" / "examples" / "systolic_bert_layer.yaml"
    done = cli_in_process("sweep", "run", str(spec), "--out", str(tmp_path / "never"), "--no-progress")
    assert done.returncode == 130, done
    assert done.stderr.strip() == "accelsim: interrupted before any point ran"
