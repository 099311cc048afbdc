"""SCALE-Sim compatibility: its input files, and agreement with SCALE-Sim 3.0's own numbers."""
from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest

from accelsim.engines.systolic import GemmLayer, simulate_gemm, simulate_gemm_reference
from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape
from accelsim.scalesim_io import conv_layer, read_scalesim_config, read_topology

DATA = Path(__file__).parent / "data"
SCALESIM_PYTHON = Path("/opt/scalesim-venv/bin/python")
RUNNER = Path(__file__).parents[1] / "benchmarks" / "scalesim_runner.py"


def test_reads_scalesim_example_configs():
    scale = read_scalesim_config(DATA / "scalesim" / "scale.cfg")
    assert (scale.array.rows, scale.array.cols, scale.array.dataflow) == (32, 32, "os")
    assert scale.sram.ifmap_bytes == scale.sram.filter_bytes == scale.sram.ofmap_bytes == 64 * 1024
    assert scale.word_bytes == 1 and scale.name == "scale_example_run_32x32_os"
    google = read_scalesim_config(DATA / "scalesim" / "google_user_bw.cfg")
    assert (google.array.rows, google.array.dataflow) == (256, "ws")
    assert google.sram.ofmap_bytes == 2048 * 1024 and google.dram_bytes_per_cycle == 10


def test_reads_conv_topology_as_im2col_gemms():
    layers = read_topology(DATA / "scalesim" / "small_conv.csv")
    first = layers[0]
    # 7x7 input, 3x3 filter, stride 2: ceil((7 - 3 + 2) / 2) = 3, so 3x3 outputs; window 3*3*2
    assert (first.shape.m, first.shape.k, first.shape.n) == (9, 18, 5)
    assert first.ifmap_words == 7 * 7 * 2
    assert [l.name for l in layers] == ["Conv1", "Conv2", "Conv3"]


def test_reads_gemm_topology_with_or_without_trailing_comma():
    layers = read_topology(DATA / "scalesim" / "small_gemm.csv")
    # SCALE-Sim's GEMM rows are "Layer, M, N, K": M ifmap rows, N filters, K reduction
    assert [(l.shape.m, l.shape.k, l.shape.n) for l in layers] == [(10, 5, 6), (37, 19, 23), (64, 64, 64)]


def test_depthwise_layers_split_per_channel_like_scalesim(tmp_path):
    topo = tmp_path / "dw.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nDP_conv, 8, 8, 3, 3, 3, 1, 1,\n")
    layers = read_topology(topo)
    assert [l.name for l in layers] == [f"DP_convChannel_{c}" for c in range(3)]
    assert all(l.shape.k == 9 for l in layers)


def test_trailing_marker_is_ignored_like_scalesim(tmp_path):
    # scale-sim-v2's topologies/conv_nets/mobilnet_paper.csv tags depthwise rows "...,1,#dw";
    # SCALE-Sim drops the field after the last comma, so the row runs as written.
    marked, plain = tmp_path / "marked.csv", tmp_path / "plain.csv"
    header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    marked.write_text(header + "Conv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw\nConv3, 112, 112, 1, 1, 32, 64, 1,\n")
    plain.write_text(header + "Conv2_dw, 112, 112, 3, 3, 1, 1, 1,\nConv3, 112, 112, 1, 1, 32, 64, 1,\n")
    assert read_topology(marked) == read_topology(plain)


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_batch_column_scales_ifmap_rows_and_equals_the_gemm_it_lowers_to(tmp_path, batch):
    conv = tmp_path / "conv.csv"
    conv.write_text("Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,"
                    f"Strides,Batch Size,\ntoy,6,6,3,3,2,5,1,{batch},\n")
    (layer,) = read_topology(conv)
    single = conv_layer("toy", 6, 6, 3, 3, 2, 5, 1)
    # im2col of a batch stacks the images' output pixels: M grows, K and N (the filter) do not
    assert (layer.shape.m, layer.shape.k, layer.shape.n) == (batch * single.shape.m, single.shape.k, single.shape.n)
    assert layer.ifmap_words == batch * single.ifmap_words
    hw = read_scalesim_config(DATA / "scalesim" / "scale.cfg")
    got, one = simulate_gemm(layer.shape, hw, ifmap_words=layer.ifmap_words), simulate_gemm(single.shape, hw)
    assert got["macs"] == batch * one["macs"]


def test_batch_column_in_header_needs_a_value_in_every_row(tmp_path):
    conv = tmp_path / "conv.csv"
    conv.write_text("Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,"
                    "Strides,Batch,\ntoy,4,4,1,1,1,2,1,\n")
    with pytest.raises(AccelsimError, match="Batch"):
        read_topology(conv)


CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


@pytest.mark.parametrize("text, needles", [
    (CONV_HEADER + "c1, 7, 7, 3, 3, 2, 5,\n", ["line 2", "Strides"]),
    (CONV_HEADER + "c1, 7, 0, 3, 3, 2, 5, 1,\n", ["line 2 IFMAP Width", ">= 1"]),
    (CONV_HEADER + "c1, 7, 7, 3, 3, -2, 5, 1,\n", ["line 2 Channels", ">= 1"]),
    (CONV_HEADER + "c1, 7, 7, 3, x, 2, 5, 1,\n", ["line 2 Filter Width", "not an integer"]),
    (CONV_HEADER + "c1, 3, 3, 5, 5, 2, 5, 1,\n", ["line 2", "larger than the ifmap"]),
    ("Layer, M, N, K,\ng, 4, 4,\n", ["line 2", "K"]),
    ("Layer, M, N, K,\ng, 4, 4, 4, 2:4,\n", ["line 2", "1:1"]),
    ("Layer, M, N, K,\n", ["no layer rows"]),
    ("", ["empty topology"]),
    ("name, a, b\nx, 1, 2\n", ["header", "Layer, M, N, K"]),
])
def test_bad_topologies_name_file_and_field(tmp_path, text, needles):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(AccelsimError) as info:
        read_topology(path)
    message = str(info.value)
    assert str(path) in message or "topo.csv" in message
    for needle in needles:
        assert needle in message


GOOD_CFG = (DATA / "scalesim" / "google_user_bw.cfg").read_text()


@pytest.mark.parametrize("old, new, needles", [
    ("Dataflow : ws", "Dataflow : xs", ["Dataflow", "os, ws, is"]),
    ("ArrayHeight:    256", "ArrayHeight: 0", ["ArrayHeight", ">= 1"]),
    ("IfmapSramSzkB:    6144", "IfmapSramSzkB: -4", ["IfmapSramSzkB", ">= 1"]),
    ("FilterSramSzkB:   6144\n", "", ["FilterSramSzkB", "missing"]),
    ("Bandwidth : 10", "Bandwidth : fast", ["Bandwidth", "not a number"]),
    ("Bandwidth : 10", "Bandwidth : 0", ["Bandwidth", "> 0"]),
    ("InterfaceBandwidth: USER", "InterfaceBandwidth: MAYBE", ["InterfaceBandwidth", "USER, CALC"]),
    ("[architecture_presets]", "[arch]", ["architecture_presets", "missing section"]),
    ("[general]", "general]", ["malformed"]),
    ("ArrayHeight:    256", "ArrayHeight: 1000000000000000000000000000000", ["array.rows", "too large"]),
])
def test_bad_configs_name_file_and_field(tmp_path, old, new, needles):
    path = tmp_path / "bad.cfg"
    assert old in GOOD_CFG
    path.write_text(GOOD_CFG.replace(old, new))
    with pytest.raises(AccelsimError) as info:
        read_scalesim_config(path)
    message = str(info.value)
    assert "bad.cfg" in message
    for needle in needles:
        assert needle in message


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(AccelsimError, match="file not found"):
        read_scalesim_config(tmp_path / "nope.cfg")
    with pytest.raises(AccelsimError, match="file not found"):
        read_topology(tmp_path / "nope.csv")


# --- agreement with SCALE-Sim 3.0 ----------------------------------------------------------------

def _hw(rows: int, cols: int, dataflow: str, sram_kb: int, bandwidth: float) -> SystolicAccelerator:
    return SystolicAccelerator(
        name="scalesim-check", clock_hz=1e9, word_bytes=1, array={"rows": rows, "cols": cols, "dataflow": dataflow},
        sram={"ifmap_bytes": sram_kb * 1024, "filter_bytes": sram_kb * 1024, "ofmap_bytes": sram_kb * 1024},
        dram={"name": "dram", "bandwidth_bytes_per_cycle": bandwidth})


def _layer(row: dict) -> GemmLayer:
    if row["kind"] == "gemm":
        return GemmLayer(row["layer"], GemmShape(m=int(row["m"]), k=int(row["k"]), n=int(row["n"])))
    return conv_layer(row["layer"], *(int(row[k]) for k in ("ifmap_h", "ifmap_w", "filter_h", "filter_w",
                                                             "channels", "filters", "stride")))


def _check_against_scalesim(ours: dict, ref: dict, dataflow: str, rows: int, cols: int) -> None:
    # SCALE-Sim's stall-free cycles: its Total Cycles minus its Stall Cycles
    assert ours["compute_cycles"] == int(ref["total_cycles"]) - int(ref["stall_cycles"])
    assert math.isclose(ours["mapping_efficiency"], float(ref["mapping_efficiency_pct"]) / 100, rel_tol=1e-12)
    assert ours["sram_reads"]["ifmap"] == int(ref["sram_ifmap_reads"])
    assert ours["sram_reads"]["filter"] == int(ref["sram_filter_reads"])
    # deliberate difference: SCALE-Sim's os ofmap writes add rows + cols per fold that are not data
    padding = ours["folds"] * (rows + cols) if dataflow == "os" else 0
    assert ours["sram_writes"]["ofmap"] + padding == int(ref["sram_ofmap_writes"])


def _recorded() -> list[dict]:
    with (DATA / "scalesim_reference.csv").open() as f:
        return list(csv.DictReader(f))


def test_recorded_reference_covers_every_dataflow_and_non_square_arrays():
    rows = _recorded()
    assert {r["dataflow"] for r in rows} == {"os", "ws", "is"}
    assert any(r["rows"] != r["cols"] for r in rows) and {r["kind"] for r in rows} == {"gemm", "conv"}
    assert any(int(r["stall_cycles"]) > 0 for r in rows)  # SCALE-Sim stalled, yet compute cycles still agree


@pytest.mark.parametrize("ref", _recorded(), ids=lambda r: f"{r['layer']}-{r['rows']}x{r['cols']}-{r['dataflow']}")
def test_matches_recorded_scalesim_runs(ref):
    rows, cols = int(ref["rows"]), int(ref["cols"])
    layer = _layer(ref)
    ours = simulate_gemm(layer.shape, _hw(rows, cols, ref["dataflow"], 1, 2), ifmap_words=layer.ifmap_words)
    _check_against_scalesim(ours, ref, ref["dataflow"], rows, cols)


def _small(ref: dict) -> bool:
    layer = _layer(ref)
    return layer.shape.m * layer.shape.k * layer.shape.n <= 20_000


@pytest.mark.parametrize("ref", [r for r in _recorded() if _small(r)],
                         ids=lambda r: f"{r['layer']}-{r['rows']}x{r['cols']}-{r['dataflow']}")
def test_reference_path_matches_recorded_scalesim_runs(ref):
    """The cycle-stepped reference derives each fold's length from its own demand schedule; its
    stall-free cycles must still equal SCALE-Sim's recorded ones (Total minus Stall cycles)."""
    rows, cols = int(ref["rows"]), int(ref["cols"])
    layer = _layer(ref)
    ours = simulate_gemm_reference(layer.shape, _hw(rows, cols, ref["dataflow"], 1, 2),
                                   ifmap_words=layer.ifmap_words)
    _check_against_scalesim(ours, ref, ref["dataflow"], rows, cols)


@pytest.mark.skipif(not SCALESIM_PYTHON.exists(), reason="SCALE-Sim venv not installed at /opt/scalesim-venv")
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_matches_live_scalesim(dataflow):
    layers = [{"name": "g", "kind": "gemm", "m": 21, "n": 13, "k": 17},
              {"name": "c", "kind": "conv", "ifmap_h": 9, "ifmap_w": 8, "filter_h": 3, "filter_w": 2,
               "channels": 3, "filters": 6, "stride": 2}]
    spec = {"rows": 6, "cols": 5, "dataflow": dataflow, "ifmap_kb": 1, "filter_kb": 1, "ofmap_kb": 1,
            "bandwidth": 4, "layers": layers}
    done = subprocess.run([str(SCALESIM_PYTHON), str(RUNNER), json.dumps(spec)], capture_output=True, text=True,
                          timeout=120, check=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])["layers"]
    gemm = GemmLayer("g", GemmShape(m=21, k=17, n=13))
    conv = conv_layer("c", 9, 8, 3, 2, 3, 6, 2)
    for layer, ref in zip((gemm, conv), results):
        ours = simulate_gemm(layer.shape, _hw(6, 5, dataflow, 1, 4), ifmap_words=layer.ifmap_words)
        _check_against_scalesim(ours, ref, dataflow, 6, 5)


def test_settings_accelsim_does_not_model_are_named(tmp_path):
    """Sparsity, Ramulator and layout settings are listed (the CLI warns) instead of silently ignored."""
    from accelsim.scalesim_io import ignored_settings
    from tests.cli_helper import cli_in_process

    cfg = tmp_path / "s.cfg"
    cfg.write_text("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\n"
                   "OfmapSramSzkB: 64\nDataflow: os\nBandwidth: 10\nIfmapOffset: 0\n[sparsity]\nSparsitySupport: true\n"
                   "[layout]\nIfmapCustomLayout: False\n[run_presets]\nInterfaceBandwidth: USER\nUseRamulatorTrace: True\n")
    assert ignored_settings(cfg) == ["[sparsity] sparsitysupport", "[layout] ifmapcustomlayout",
                                     "[run_presets] useramulatortrace"]
    done = cli_in_process("simulate", "--scalesim-config", str(cfg), "--gemm", "8,8,8")
    assert done.returncode == 0 and "warning" in done.stderr and "sparsitysupport" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
