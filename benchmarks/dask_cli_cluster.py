"""Dask as deployed: a ``dask scheduler`` and single-thread ``dask worker`` processes on localhost.

Why a module of its own: the sweep tests (a worker killed mid-sweep) and the throughput benchmark
(every executor timed, a real scheduler included) need the same cluster, started from the command
line rather than as a LocalCluster inside the caller's process, and stopped whatever happened.
Workers run without a nanny, so a killed worker stays dead. The processes get the sweep's Dask
settings (``accelsim.sweep.dask_settings``) unless ``sweep_settings`` is off: the idle-CPU
benchmark compares both.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from accelsim.sweep.dask_settings import env as settings_env

START_TIMEOUT_S = 20.0
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def environ_without_dask() -> dict[str, str]:
    """This process's environment minus ``DASK_*`` variables: a cluster meant to run with Dask's
    defaults must not pick up settings a shell exported (``eval "$(accelsim sweep dask-env)"``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (``/proc/PID/stat`` fields 14 and 15): a separate
    scheduler's CPU (and, in the idle benchmark, the workers') counted from outside it."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL whatever is still alive five seconds later."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class CliCluster:
    """A scheduler and ``n_workers`` single-thread workers; ``address`` is the scheduler's."""

    def __init__(self, tmp: Path, n_workers: int, env: dict[str, str], cwd: Path | None = None,
                 sweep_settings: bool = True) -> None:
        env = {**env, **settings_env()} if sweep_settings else env
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        scheduler_file = tmp / "scheduler.json"
        self.log_path = tmp / "dask.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed with the processes
        common = {"cwd": cwd, "env": env, "stdout": self._log, "stderr": subprocess.STDOUT}
        try:
            self.scheduler = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--no-dashboard", "--scheduler-file", str(scheduler_file)], **common)
            self.procs.append(self.scheduler)
            deadline = time.monotonic() + START_TIMEOUT_S
            while not scheduler_file.exists() and time.monotonic() < deadline and self.scheduler.poll() is None:
                time.sleep(0.05)
            if not scheduler_file.exists():
                raise RuntimeError("the dask scheduler did not start: " + self.log_path.read_text()[-2000:])
            time.sleep(0.05)  # the file is written whole, but give the writer its close
            self.address = json.loads(scheduler_file.read_text())["address"]
            for i in range(n_workers):
                self.workers.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                     "--death-timeout", "30"], **common))
            self.procs += self.workers
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        stop_processes(self.procs)
        self._log.close()
