"""Values a column cannot hold never cost the other rows (sweep store and driver)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec, load_results, run_sweep
from accelsim.sweep.store import ResultStore, arrow_schema, cell

HUGE_K = 2**53  # the systolic engine's largest extent; with 256x256 outputs, macs = 2**69 > int64


def test_metric_beyond_int64_is_that_points_error_row_and_reruns_work(tmp_path):
    spec = {"hardware": "tpu-v1", "overrides": {"array.dataflow": "os"}, "evaluator": "systolic",
            "workloads": [{"gemm": [256, HUGE_K, 256]}, {"gemm": [8, 8, 8]}]}
    first = run_sweep(spec, tmp_path, executor="serial")
    df = load_results(tmp_path).set_index("workload")
    assert first.total == 2 and first.ok == 1 and first.failed == 1
    huge = df.loc[f"gemm-256x{HUGE_K}x256"]
    assert huge["status"] == "error" and "int64" in huge["error"] and "macs" in huge["error"]
    assert df.loc["gemm-8x8x8", "status"] == "ok" and df.loc["gemm-8x8x8", "macs"] == 8 * 8 * 8
    again = run_sweep(spec, tmp_path, executor="serial")  # no crash, nothing recomputed
    assert again.already_done == 2 and again.computed == 0


@pytest.mark.parametrize("big,as_text", [(10**30, True), (2**70, False)])
def test_swept_value_beyond_int64_is_stored_exactly(tmp_path, big, as_text):
    spec = SweepSpec.from_dict({"parameters": {"options.scale": [1, big]}, "workloads": [{"gemm": [16, 8, 8]}],
                                "evaluator": "tests.sweep_fixtures:analytic"}, allow_code=True)
    result = run_sweep(spec, tmp_path, executor="serial")
    df = load_results(tmp_path)
    assert result.ok == 2
    # exact: 10**30 is not a double, so it is kept as its decimal text; 2**70 is a double
    assert pd.api.types.is_string_dtype(df["options.scale"]) == as_text
    assert [int(v) for v in df["options.scale"]] == [1, big]
    assert df["total_cycles"].iloc[1] == pytest.approx(df["total_cycles"].iloc[0] * big)


def test_store_replaces_only_the_unfit_row(tmp_path):
    schema = arrow_schema([("key", "string"), ("status", "string"), ("error", "string"), ("macs", "int64")])
    rows = [{"key": "a", "status": "ok", "error": None, "macs": 5},
            {"key": "b", "status": "ok", "error": None, "macs": 2**64},
            {"key": "c", "status": "ok", "error": None, "macs": 7}]
    store = ResultStore(tmp_path / "s")
    with pytest.raises(AccelsimError, match="int64"):
        store.append(rows, schema)
    assert not store.parts()
    store.append(rows, schema, on_unfit=lambda row, why: {**row, "status": "error", "error": why, "macs": None})
    got = store.raw().set_index("key")
    assert pd.isna(got.loc["b", "macs"])
    assert list(got["status"]) == ["ok", "error", "ok"] and "2**63" in got.loc["b", "error"]
    assert got.loc["a", "macs"] == 5 and got.loc["c", "macs"] == 7


def test_cell_types():
    assert cell(2**63 - 1, "int64", "x") == 2**63 - 1
    for bad in (2**63, -2**63 - 1, 2.5, "3"):
        with pytest.raises(ValueError):
            cell(bad, "int64", "x")
    assert cell(2**70, "float64", "x") == 2.0**70
    with pytest.raises(ValueError):
        cell(10**400, "float64", "x")
    assert cell(10**30, "string", "x") == str(10**30)
    assert pa.Table.from_pylist([{"x": cell(3.0, "int64", "x")}]).column("x").type == pa.int64()


# --- the spec name chooses the default output directory ----------------------------------------
@pytest.mark.parametrize("name", ["../../x", "/etc/x", "..", ".", "a/b", "a\\b", ".hidden", "-rf", "x" * 101,
                                  "nul\0byte", ""])
def test_unsafe_spec_names_are_refused(tmp_path, monkeypatch, name):
    import yaml

    from tests.cli_helper import cli_in_process

    with pytest.raises(AccelsimError) as info:
        SweepSpec.from_dict({"name": name, "workloads": [{"gemm": [8, 8, 8]}]})
    assert info.value.field == "name"
    if "\0" in name:
        return  # not representable in a YAML file anyway
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    (tmp_path / "work" / "s.yaml").write_text(yaml.safe_dump({"name": name, "workloads": [{"gemm": [8, 8, 8]}]}))
    done = cli_in_process("sweep", "run", "s.yaml", "--executor", "serial", "--no-progress")
    assert done.returncode == 2 and "name" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing written beside or above
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["s.yaml"]


def test_safe_name_is_the_default_directory(tmp_path, monkeypatch):
    import yaml

    from tests.cli_helper import cli_in_process

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "bert_v1.2-a", "workloads": [{"gemm": [8, 8, 8]}]}))
    done = cli_in_process("sweep", "run", "s.yaml", "--executor", "serial", "--no-progress")
    assert done.returncode == 0, done
    assert (tmp_path / "sweeps" / "bert_v1.2-a" / "_manifest.json").exists()
