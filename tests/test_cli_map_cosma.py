"""``accelsim map cosma``: JSON fields, sizes, and one-line errors with exit status 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelsim.cli.commands.map_cosma import parse_size
from accelsim.errors import AccelsimError
from accelsim.mapping import Mapping


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelsim", "map", "cosma", *args], capture_output=True, text=True)


def test_parse_size():
    assert parse_size("200") == 200
    assert parse_size("64KiB") == 65536
    assert parse_size("1.5MB") == 1_500_000
    for bad in ("1.5XB", "-3", "0.5"):
        with pytest.raises(AccelsimError):
            parse_size(bad)


def test_json_report_and_saved_mapping(tmp_path):
    path = tmp_path / "m.yaml"
    done = run("--workload", "resnet50", "--scratchpad", "M_R", "--with-weights", "--baselines", "--json",
               "--time-limit", "30", "--save", str(path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in ("non_compulsory_bytes", "status", "gap", "solve_s", "schedule", "baselines"):
        assert key in report
    best_baseline = min(b["non_compulsory_bytes"] for b in report["baselines"].values())
    assert report["non_compulsory_bytes"] <= best_baseline
    saved = Mapping.load(path)
    assert saved.schedule == report["schedule"]
    assert saved.meta["non_compulsory_bytes"] == report["non_compulsory_bytes"]


@pytest.mark.parametrize("args,needle", [
    (("--workload", "resnet50", "--scratchpad", "1KiB"), "use at least 2408448"),
    (("--workload", "nope", "--scratchpad", "1KiB"), "unknown workload"),
    (("--workload", "resnet50", "--scratchpad", "3MB", "--solver", "gurobi"), "unknown solver"),
])
def test_bad_input_exits_2_with_one_line(args, needle):
    done = run(*args)
    assert done.returncode == 2
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
