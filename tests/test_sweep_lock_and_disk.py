"""One sweep per results directory (a lock naming its holder), and a full disk is one line."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import accelsim.sweep.store as store_module
from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec, load_results, run_sweep
from accelsim.sweep.lock import LOCK_NAME, directory_lock
from accelsim.sweep.store import ResultStore
from tests.cli_helper import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"parameters": {"array.rows": [8, 16, 24, 32, 40, 48, 56, 64]}, "workloads": [{"gemm": [32, 16, 24]}],
         "evaluator": "systolic"}


def test_second_run_on_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    with directory_lock(out):
        with pytest.raises(AccelsimError) as info:
            run_sweep(SMALL, out, executor="serial")
        text = str(info.value)
        assert f"pid {os.getpid()}" in text and socket.gethostname() in text and "started" in text
        assert "\n" not in text and not list(out.glob("part-*"))
    result = run_sweep(SMALL, out, executor="serial")  # released: runs
    assert result.ok == result.total == 8


def test_concurrent_cli_run_is_one_error_and_the_lock_dies_with_its_holder(tmp_path):
    spec = {"parameters": {"array.rows": {"range": {"start": 1, "stop": 200, "step": 1}}},
            "workloads": [{"gemm": [64, 32, 48]}], "evaluator": "tests.sweep_fixtures:slow"}
    spec_path = tmp_path / "slow.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_TEST_SLEEP_S": "0.05"}
    child = subprocess.Popen([sys.executable, "-m", "accelsim", "sweep", "run", str(spec_path), "--out", str(out),
                              "--executor", "serial", "--no-progress", "--allow-code"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (out / "_manifest.json").exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert child.poll() is None, child.communicate()
        second = cli_in_process("sweep", "run", str(spec_path), "--out", str(out), "--executor", "serial",
                                "--no-progress", "--allow-code")
        assert second.returncode == 2, second
        assert len(second.stderr.strip().splitlines()) == 1 and "already running" in second.stderr
        assert f"pid {child.pid}" in second.stderr
        compact = cli_in_process("sweep", "compact", str(out))
        assert compact.returncode == 2 and "already running" in compact.stderr, compact
    finally:
        child.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel still drops the flock
        child.communicate(timeout=30)
    assert (out / LOCK_NAME).exists()  # a stale file ...
    resumed = run_sweep(SweepSpec.from_dict(spec, allow_code=True), out, executor="serial")  # ... blocks nobody
    assert resumed.total == 200 and len(load_results(out)) == 200


def test_full_disk_is_one_line_and_earlier_parts_stay_intact(tmp_path, monkeypatch):
    real = store_module.pq.write_table
    calls = {"n": 0}

    def write_table(table, where, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            Path(where).write_bytes(b"torn")  # what a disk that fills mid-write leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(store_module.pq, "write_table", write_table)
    out = tmp_path / "out"
    with pytest.raises(AccelsimError) as info:
        run_sweep(SMALL, out, executor="serial", flush_rows=3)
    assert "No space left on device (ENOSPC)" in str(info.value) and "\n" not in str(info.value)
    parts = ResultStore(out).parts()
    assert len(parts) == 2 and not list(out.glob(".*.tmp"))  # no torn temporary left behind
    assert len(ResultStore(out).raw()) == 6
    done = cli_in_process("sweep", "run", "--executor", "serial", "--no-progress", "--out", str(out),
                          str(_spec_file(tmp_path)))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done
    assert "ENOSPC" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.setattr(store_module.pq, "write_table", real)
    resumed = run_sweep(SMALL, out, executor="serial")
    assert resumed.already_done == 6 and resumed.computed == 2 and len(load_results(out)) == 8


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path
