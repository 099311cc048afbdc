"""A sweep file is data: ``module:function`` builders and evaluators run only with an explicit opt-in.

Each refusal test plants code that would leave a file behind if it ran (a shell command, a module
whose import writes a file) and checks the file is absent, so "refused" means "nothing ran", not
merely "an error came out at the end".
"""
from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
import yaml

from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec, load_results, run_sweep
from tests.cli_helper import cli_in_process

GEMM = [{"gemm": [16, 8, 8]}]


def _shell_builder(marker):
    return [{"builder": "subprocess:getoutput", "args": {"cmd": f"touch {marker}"}}]


def _planted_module(tmp_path, monkeypatch, name):
    """A module whose *import* creates ``<name>.ran``; returns that marker path."""
    marker = tmp_path / f"{name}.ran"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from tests.sweep_fixtures import analytic\n"
        "def build():\n    from accelsim.ir import GemmShape\n    return GemmShape(8, 8, 8)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return marker


def test_shell_command_builder_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(AccelsimError) as info:
        SweepSpec.from_dict({"workloads": _shell_builder(marker)})
    assert not marker.exists()
    assert info.value.field == "workloads[0].builder"
    assert "--allow-code" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(AccelsimError, match="--allow-code"):
        run_sweep({"workloads": _shell_builder(marker)}, tmp_path / "out", executor="serial")
    assert not marker.exists() and not (tmp_path / "out").exists()
    # the shorthand form {"module:function": args} goes through the same gate
    with pytest.raises(AccelsimError, match="--allow-code"):
        SweepSpec.from_dict({"workloads": [{"subprocess:getoutput": {"cmd": f"touch {marker}"}}]})
    assert not marker.exists()


def test_cli_refuses_the_shell_builder_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(yaml.safe_dump({"workloads": _shell_builder(marker)}))
    done = cli_in_process("sweep", "run", str(spec), "--out", str(tmp_path / "o"), "--no-progress")
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1 and "--allow-code" in done.stderr
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_code_evaluator_is_not_even_imported_without_opt_in(tmp_path, monkeypatch):
    marker = _planted_module(tmp_path, monkeypatch, "planted_eval")
    with pytest.raises(AccelsimError) as info:
        SweepSpec.from_dict({"workloads": GEMM, "evaluator": "planted_eval:analytic"})
    assert info.value.field == "evaluator.name" and "allow_code=True" in str(info.value)
    assert not marker.exists() and "planted_eval" not in sys.modules
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"workloads": GEMM, "evaluator": "planted_eval:analytic"}))
    done = cli_in_process("sweep", "run", str(spec), "--out", str(tmp_path / "o"), "--no-progress")
    assert done.returncode == 2 and "evaluator.name" in done.stderr and not marker.exists(), done


def test_opt_in_runs_the_code(tmp_path, monkeypatch):
    marker = _planted_module(tmp_path, monkeypatch, "planted_ok")
    data = {"workloads": [{"builder": "planted_ok:build"}], "evaluator": "planted_ok:analytic"}
    result = run_sweep(data, tmp_path / "api", executor="serial", allow_code=True)
    assert marker.exists() and result.ok == 1
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(data))
    done = cli_in_process("sweep", "run", str(spec), "--out", str(tmp_path / "cli"), "--executor", "serial",
                          "--no-progress", "--allow-code")
    assert done.returncode == 0, done
    assert load_results(tmp_path / "cli")["total_cycles"].tolist() == load_results(tmp_path / "api")["total_cycles"].tolist()
    # a SweepSpec built without the opt-in gets it from run_sweep's keyword
    with pytest.raises(AccelsimError):
        SweepSpec.from_dict(data)


def test_installed_entry_points_need_no_opt_in(tmp_path, monkeypatch):
    """Code the user installed (package entry points) is trusted like registered code."""
    import accelsim.sweep.evaluators as evaluators
    import accelsim.sweep.workloads as workloads
    from accelsim.sweep import plugins

    _planted_module(tmp_path, monkeypatch, "planted_plugin")
    groups = {plugins.EVALUATOR_GROUP: {"mine": EntryPoint("mine", "planted_plugin:analytic", plugins.EVALUATOR_GROUP)},
              plugins.BUILDER_GROUP: {"tiny": EntryPoint("tiny", "planted_plugin:build", plugins.BUILDER_GROUP)}}
    monkeypatch.setattr(plugins, "_entry_points", lambda group: groups.get(group, {}))
    monkeypatch.setattr(evaluators, "EVALUATORS", dict(evaluators.EVALUATORS))
    workloads.resolve_workload.cache_clear()
    spec = SweepSpec.from_dict({"workloads": ["tiny", {"builder": "tiny", "label": "again", "args": {}}],
                                "evaluator": "mine"})
    result = run_sweep(spec, tmp_path / "o", executor="serial")
    assert result.ok == result.total == 2
    with pytest.raises(AccelsimError, match="unknown evaluator") as info:
        run_sweep({"workloads": GEMM, "evaluator": "minee"}, tmp_path / "x", executor="serial")
    assert "mine" in str(info.value)  # installed names are listed
    workloads.resolve_workload.cache_clear()
