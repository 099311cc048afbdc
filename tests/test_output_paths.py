"""Output paths are checked before the work, one way for every command (accelsim.outputs)."""
from __future__ import annotations

import pytest

from accelsim.errors import AccelsimError
from accelsim.outputs import check_output_dir, check_output_file
from tests.cli_helper import cli_in_process


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the output path was checked")


@pytest.fixture
def places(tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    return {"directory": (tmp_path, "is a directory"), "under_a_file": (a_file / "out.yaml", "parent of this path is a file"),
            "unwritable": ("/proc/accelsim-forbidden/out.yaml", "cannot write here")}


COMMANDS = {
    "map cosma --save": (["map", "cosma", "--workload", "resnet50", "--scratchpad", "3MB", "--save"], "--save",
                         [("mappers.cosma", "solve_cosma"), ("mappers.cosma", "budgets"),
                          ("accelsim.cli.commands.map_cosma", "load_workload")]),
    "map fusemax --save-mapping": (["map", "fusemax", "--model", "bert", "--seq", "1024", "--save-mapping"],
                                   "--save-mapping", [("mappers.fusemax", "optimize")]),
    "simulate --csv": (["simulate", "--gemm", "8,8,8", "--csv"], "--csv",
                       [("accelsim.engines.systolic", "simulate_layers")]),
}


@pytest.mark.parametrize("place", ["directory", "under_a_file", "unwritable"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_output_file_is_refused_before_the_work(monkeypatch, places, command, place):
    import importlib

    args, field, work = COMMANDS[command]
    for module, name in work:
        monkeypatch.setattr(importlib.import_module(module), name, _no_work)
    path, needle = places[place]
    done = cli_in_process(*args, str(path))
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and needle in lines[0], done.stderr


@pytest.mark.parametrize("place", ["a_file", "under_a_file", "unwritable"])
def test_bad_sweep_out_is_refused_before_any_point(tmp_path, monkeypatch, place):
    import yaml

    import accelsim.sweep

    monkeypatch.setattr(accelsim.sweep, "run_sweep", _no_work)
    (tmp_path / "f").write_text("x")
    path = {"a_file": tmp_path / "f", "under_a_file": tmp_path / "f" / "out",
            "unwritable": "/proc/accelsim-forbidden/out"}[place]
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"workloads": [{"gemm": [8, 8, 8]}]}))
    done = cli_in_process("sweep", "run", str(spec), "--out", str(path), "--no-progress")
    assert done.returncode == 2 and "--out" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done


def test_missing_parents_are_created_consistently(tmp_path):
    target = tmp_path / "new" / "deeper" / "layers.csv"
    done = cli_in_process("simulate", "--gemm", "8,8,8", "--csv", str(target))
    assert done.returncode == 0 and target.is_file() and target.stat().st_size > 0, done
    assert check_output_file(tmp_path / "x" / "m.yaml", "--save") == tmp_path / "x" / "m.yaml"
    assert (tmp_path / "x").is_dir() and not list((tmp_path / "x").iterdir())  # the probe leaves nothing
    assert check_output_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # a results directory is made by the run, not by the check
    with pytest.raises(AccelsimError, match="empty"):
        check_output_file("", "--save")
