"""`accelsim simulate` and `accelsim run`: outputs, SCALE-Sim inputs, and one-line errors."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SCALESIM = DATA / "scalesim"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """A real process, as a user runs it (used sparingly: each start costs seconds)."""
    return subprocess.run([sys.executable, "-m", "accelsim", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli(capsys):
    """Run the CLI in this process (fast); returns (exit status, stdout, stderr)."""
    from accelsim.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        captured = capsys.readouterr()
        return done.value.code or 0, captured.out, captured.err

    return invoke


def scalesim_cfg(tmp_path: Path, **changes: str) -> Path:
    text = (SCALESIM / "google_user_bw.cfg").read_text()
    values = {"ArrayHeight:    256": "ArrayHeight: 4", "ArrayWidth:     256": "ArrayWidth: 4",
              "IfmapSramSzkB:    6144": "IfmapSramSzkB: 1", "FilterSramSzkB:   6144": "FilterSramSzkB: 1",
              "OfmapSramSzkB:    2048": "OfmapSramSzkB: 1", "Bandwidth : 10": "Bandwidth : 2"}
    values.update(changes)
    for old, new in values.items():
        text = text.replace(old, new)
    path = tmp_path / "small.cfg"
    path.write_text(text)
    return path


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_simulate_scalesim_inputs_json_matches_recorded_scalesim(tmp_path, dataflow, cli):
    cfg = scalesim_cfg(tmp_path, **{"Dataflow : ws": f"Dataflow : {dataflow}"})
    status, stdout, stderr = cli("simulate", "--scalesim-config", str(cfg), "--topology",
                                 str(SCALESIM / "small_conv.csv"), "--json")
    assert status == 0, stderr
    report = json.loads(stdout)
    required = ["compute_cycles", "stall_cycles", "total_cycles", "overall_utilization", "mapping_efficiency"]
    for row in (*report["layers"], report["totals"]):
        for key in required:
            assert key in row
        for key in ("sram_reads", "sram_writes", "dram_bytes"):
            assert set(row[key]) == {"ifmap", "filter", "ofmap"}
    # the same three convolutions were run through SCALE-Sim 3.0 on a 4x4 array (tests/data)
    with (DATA / "scalesim_reference.csv").open() as f:
        recorded = {r["layer"]: r for r in csv.DictReader(f)
                    if (r["rows"], r["cols"], r["dataflow"]) == ("4", "4", dataflow)}
    names = ["c_7x7_3x3_c2_f5_s2", "c_12x10_3x3_c4_f8_s1", "c_9x9_1x1_c16_f4_s1"]
    for row, name in zip(report["layers"], names):
        ref = recorded[name]
        assert row["compute_cycles"] == int(ref["total_cycles"]) - int(ref["stall_cycles"])
        assert row["sram_reads"]["ifmap"] == int(ref["sram_ifmap_reads"])
        assert row["sram_reads"]["filter"] == int(ref["sram_filter_reads"])
    assert report["totals"]["compute_cycles"] == sum(r["compute_cycles"] for r in report["layers"])


def test_simulate_gemm_with_preset_writes_csv(tmp_path, cli):
    out = tmp_path / "layers.csv"
    status, stdout, stderr = cli("simulate", "--hardware", "scalesim-scale", "--gemm", "384,96,384", "--gemm",
                                 "1x2048x8192", "--dataflow", "ws", "--csv", str(out))
    assert status == 0, stderr
    assert "gemm0_384x96x384" in stdout and "(ws)" in stdout
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["m"]) for r in rows] == [384, 1]
    assert {"compute_cycles", "sram_reads_ifmap", "dram_bytes_ofmap"} <= set(rows[0])


def test_simulate_model_json_matches_the_library(cli):
    """``simulate --model`` on a systolic preset reports the Report core of ``accelsim.simulate``."""
    import json

    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    code, stdout, _ = cli("simulate", "--model", "gpt2", "--hardware", "tpu-v1", "--phase", "decode",
                          "--context", "128", "--json")
    assert code == 0
    doc = json.loads(stdout)
    ref = simulate(build_model(load_model("gpt2"), "decode", batch=1, context=128), "tpu-v1").core
    assert doc["total_s"] == ref.total_s and doc["read_bytes"]["dram"] == ref.read_bytes["dram"]
    assert doc["tokens_per_s"] == 1 / ref.total_s


def test_simulate_blocks_alone(cli):
    """``--blocks N``: N decoder layers, no embedding or head; N=2 costs twice N=1 exactly."""
    import json

    base = ("simulate", "--model", "gpt2", "--hardware", "tpu-v1", "--context", "128", "--json")
    one = json.loads(cli(*base, "--blocks", "1")[1])
    two = json.loads(cli(*base, "--blocks", "2")[1])
    assert two["total_s"] == 2 * one["total_s"]
    full = json.loads(cli(*base)[1])
    assert full["total_s"] > 12 * one["total_s"]  # 12 layers plus embedding and LM head


def test_help_explains_every_option(cli):
    _, stdout, _ = cli("simulate", "--help")
    for option in ("--scalesim-config", "--hardware", "--topology", "--topology-kind", "--gemm", "--dataflow",
                   "--json", "--csv"):
        assert option in stdout
    flat = " ".join(stdout.replace("│", " ").split())
    assert "in the order M,K,N" in flat and "M, N, K" in flat  # --gemm vs topology GEMM rows


def test_huge_gemm_that_fits_the_fold_limit_reports_exact_counts(cli):
    status, stdout, stderr = cli("simulate", "--gemm", "4000000,10000000000000,1", "--dataflow", "os", "--json")
    assert status == 0, stderr
    total = json.loads(stdout)["totals"]
    m, k, n = 4_000_000, 10**13, 1
    assert total["macs"] == m * k * n and total["compulsory_dram_bytes"]["ifmap"] == m * k  # 1-byte words
    assert all(total["dram_bytes"][op] >= total["compulsory_dram_bytes"][op] > 0 for op in ("ifmap", "filter", "ofmap"))


def _bad_hardware_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "hw.yaml"
    text = (Path(__file__).parents[1] / "accelsim" / "hardware" / "presets" / "scalesim-scale.yaml").read_text()
    path.write_text(text.replace("filter_bytes: 65536", "filter_bytes: 0"))
    return path


@pytest.mark.parametrize("args, needles", [
    (lambda p: ["simulate", "--gemm", "0,4,4"], ["--gemm", "positive"]),
    (lambda p: ["simulate", "--gemm", "4,4"], ["--gemm", "M,K,N"]),
    (lambda p: ["simulate"], ["--topology/--gemm"]),
    (lambda p: ["simulate", "--hardware", "no-such", "--gemm", "4,4,4"], ["hardware", "tpu-v1"]),
    (lambda p: ["simulate", "--hardware", str(_bad_hardware_yaml(p)), "--gemm", "4,4,4"],
     ["hw.yaml", "sram.filter_bytes"]),
    (lambda p: ["simulate", "--gemm", "4,4,4", "--dataflow", "xs"], ["--dataflow", "os, ws, is"]),
    (lambda p: ["simulate", "--scalesim-config", str(scalesim_cfg(p, **{"Dataflow : ws": "Dataflow : rs"})),
                "--gemm", "4,4,4"], ["small.cfg", "Dataflow", "os, ws, is"]),
    (lambda p: ["simulate", "--scalesim-config", str(scalesim_cfg(p, **{"ArrayWidth:     256": "ArrayWidth: -3"})),
                "--gemm", "4,4,4"], ["small.cfg", "ArrayWidth"]),
    (lambda p: ["simulate", "--scalesim-config", str(scalesim_cfg(p)), "--hardware", "tpu-v1", "--gemm", "4,4,4"],
     ["--scalesim-config/--hardware"]),
    (lambda p: ["simulate", "--topology", str(_write(p / "t.csv", "Layer, M, N, K,\ng, 4, 4,\n"))],
     ["t.csv", "line 2", "K"]),
    (lambda p: ["simulate", "--topology", str(p / "missing.csv")], ["missing.csv", "not found"]),
    # missing parent directories are created (accelsim.outputs); a parent that is a file is refused
    (lambda p: ["simulate", "--gemm", "4,4,4", "--csv", str(_write(p / "no-such-dir", "") / "x.csv")],
     ["no-such-dir", "x.csv", "--csv", "cannot write"]),
    (lambda p: ["simulate", "--gemm", "4,4,4", "--csv", str(p)], ["--csv", "cannot write"]),  # a directory
    (lambda p: ["simulate", "--gemm", "4,4,99999999999999999999"], ["--gemm", "2**53"]),
    (lambda p: ["simulate", "--gemm", "4000000000,4000000000,4"], ["gemm0_4000000000x4000000000x4", "folds"]),
    (lambda p: ["simulate", "--topology", str(_write(p / "t.csv", "Layer, M, N, K,\ng, 4, 4, 99999999999999999999,\n"))],
     ["layer g", "gemm.k", "2**53"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, needles, cli):
    status, stdout, stderr = cli(*args(tmp_path))
    assert status == 2, stdout + stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for needle in needles:
        assert needle in stderr


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    cfg = scalesim_cfg(tmp_path, **{"Dataflow : ws": "Dataflow : rs"})
    done = run_cli("simulate", "--scalesim-config", str(cfg), "--topology", str(SCALESIM / "small_gemm.csv"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Dataflow" in done.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
