"""Plots and the analysis behind them: Pareto fronts and utilization checked against brute force."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workloads.models import load_model
from workloads.transformer import build_model
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import plots
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.timeline import TaskRecord, busy_time, utilization_over_time
from workloads.examples import transformer_layer_gemms


def brute_force_front(arr: np.ndarray) -> np.ndarray:
    """The definition, O(n^2): a row is on the front iff no row dominates it."""
    n = len(arr)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if np.isnan(arr[i]).any():
            keep[i] = False
            continue
        for j in range(n):
            if j != i and not np.isnan(arr[j]).any() and np.all(arr[j] <= arr[i]) and np.any(arr[j] < arr[i]):
                keep[i] = False
                break
    return keep


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(1, 4).flatmap(lambda d: st.lists(
    st.lists(st.integers(0, 6), min_size=d, max_size=d), min_size=0, max_size=40)))
def test_pareto_front_matches_brute_force(rows):
    # small integer ranges force ties and duplicate points, the cases a fast front gets wrong
    arr = np.array(rows, dtype=float).reshape(len(rows), -1) if rows else np.zeros((0, 2))
    assert np.array_equal(plots.pareto_front(arr), brute_force_front(arr))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(0, 100)), min_size=1, max_size=30),
       st.data())
def test_pareto_front_maximize_and_nan(rows, data):
    df = pd.DataFrame(rows, columns=["lat", "energy", "perf"])
    if len(df) > 2:
        df.loc[data.draw(st.integers(0, len(df) - 1)), "energy"] = np.nan
    mask = plots.pareto_front(df, ["lat", "energy", "perf"], maximize=["perf"])
    flipped = df[["lat", "energy", "perf"]].to_numpy() * np.array([1, 1, -1])
    assert np.array_equal(mask, brute_force_front(flipped))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=25),
       st.integers(1, 12))
def test_utilization_over_time_matches_unit_step_counting(tasks, width):
    """Integer task times, integer bins: count busy unit-time steps per bin by hand."""
    records = [TaskRecord(u, s, s + d) for u, s, d in tasks]
    end = max(r.end for r in records)
    edges = np.arange(0, end + width + 1, width, dtype=float)
    got_edges, util = utilization_over_time(records, edges)
    for unit in {r.unit for r in records}:
        busy_steps = np.zeros(int(edges[-1]), dtype=bool)
        for r in records:
            if r.unit == unit:
                busy_steps[int(r.start):int(r.end)] = True
        expected = [busy_steps[int(lo):int(hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
        assert np.allclose(util[unit], expected)
        assert busy_time(records)[unit] == busy_steps.sum()


def test_task_record_rejects_negative_duration():
    with pytest.raises(AccelsimError, match="ends"):
        TaskRecord("pe", 5, 3)


def _save(fig, stem):
    return plots.save_figure(fig, stem, dpi=40)


def _nonempty(paths):
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 500 for p in paths)


def test_every_plot_renders_to_png_and_svg(tmp_path):
    from accelsim.simulate import simulate

    report = simulate(transformer_layer_gemms(seq=64), load_hardware("tpu-v1"))
    (roof,) = plots.roofs_from_report(report)  # GEMMs only: the matrix roof
    # 256 x 256 MACs x 2 FLOP x 700 MHz = 91.75 TFLOP/s (Jouppi et al. 2017 quote 92 TOPS)
    assert roof["peak_flops_per_s"] == pytest.approx(91.75e12, rel=1e-3)
    for name in ("tpu-v1", "fusemax-cloud", "a100-80gb"):
        rep = simulate(build_model(load_model("gpt2"), "prefill", batch=1, seq=128), load_hardware(name))
        roofs = {r["name"]: r for r in plots.roofs_from_report(rep)}
        ops = plots.ops_from_report(rep, phase="prefill")
        assert ops and len(roofs) >= 2  # matrix and vector (or per-datatype) roofs
        for op in ops:  # nothing runs above its own roof
            r = roofs[op["device"]]
            attainable = min(r["peak_flops_per_s"], op["intensity_flop_per_byte"] * r["bandwidth_bytes_per_s"])
            assert op["flops_per_s"] <= attainable * (1 + 1e-9), (name, op)
    ops = plots.ops_from_report(report, phase="prefill")
    _nonempty(_save(plots.roofline_plot([roof], ops), tmp_path / "roof"))
    traffic = plots.traffic_from_report(report)
    assert sum(r["bytes"] for r in traffic) == pytest.approx(report.core.dram_bytes)  # conservation
    _nonempty(_save(plots.traffic_plot(traffic), tmp_path / "traffic"))
    recs = [TaskRecord("pe", 0, 10, kind="compute"), TaskRecord("dma", 2, 6, kind="dma")]
    _nonempty(_save(plots.timeline_plot(recs, bins=5), tmp_path / "timeline"))
    df = pd.DataFrame({"lat": [3, 1, 2, 2], "energy": [1, 3, 2, 3], "name": list("abcd")})
    _nonempty(_save(plots.pareto_plot(df, "lat", "energy", label="name"), tmp_path / "pareto"))
    cmp = [{"mapping": "cosma", "offchip_bytes": 10, "latency_s": 1.0},
           {"mapping": "belady", "offchip_bytes": 50, "latency_s": 1.2}]
    _nonempty(_save(plots.mapping_comparison_plot(cmp, ["offchip_bytes", "latency_s"],
                                                              normalize_to="belady"), tmp_path / "cmp"))
    summary = plots.busy_summary(recs)
    assert summary.set_index("unit")["utilization"].to_dict() == {"dma": 0.4, "pe": 1.0}


def test_plot_input_errors_name_the_field():
    with pytest.raises(AccelsimError, match="lacks"):
        plots.traffic_plot([{"level": "dram", "bytes": 3}])
    with pytest.raises(AccelsimError, match="unknown column"):
        plots.pareto_plot(pd.DataFrame({"a": [1]}), "a", "b")
    with pytest.raises(AccelsimError, match="unknown device"):
        plots.roofline_plot([{"name": "x", "peak_flops_per_s": 1e12, "bandwidth_bytes_per_s": 1e9}],
                            [{"name": "op", "intensity_flop_per_byte": 3, "device": "y"}])


def test_plot_cli_writes_png_and_svg(tmp_path, capsys):
    from accelsim.cli import main

    (tmp_path / "tl.json").write_text(json.dumps([{"unit": "pe", "start": 0, "end": 4, "kind": "compute"}]))
    for args in (["plot", "traffic", "--hardware", "tpu-v1", "--out", str(tmp_path / "t")],
                 ["plot", "roofline", "--hardware", "tpu-v1", "--hardware", "h100-sxm", "--out", str(tmp_path / "r")],
                 ["plot", "timeline", str(tmp_path / "tl.json"), "--out", str(tmp_path / "tl")]):
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0, capsys.readouterr().err
    assert {p.name for p in tmp_path.iterdir()} >= {"t.png", "t.svg", "tl.png", "tl.svg", "r.png", "r.svg"}
    with pytest.raises(SystemExit) as done:
        main(["plot", "timeline", str(tmp_path / "missing.csv")])
    assert done.value.code == 2 and "file not found" in capsys.readouterr().err


def test_engine_task_objects_become_records():
    """Any object with unit/start/end (e.g. a simpy engine's tasks) feeds the timeline unchanged."""
    from dataclasses import dataclass

    from accelsim.timeline import as_records

    @dataclass
    class Task:  # the shape of an event engine's task after a run
        name: str
        unit: str
        start: float | None
        end: float | None

    tasks = [Task("qk0", "pe2d", 0, 4), Task("sm0", "pe1d", 4, 6), Task("never", "pe1d", None, None)]
    recs = as_records(tasks)
    assert recs == [TaskRecord("pe2d", 0, 4, "qk0"), TaskRecord("pe1d", 4, 6, "sm0")]
    assert busy_time(tasks) == {"pe2d": 4, "pe1d": 2}
    assert plots.busy_summary(tasks).set_index("unit")["utilization"].to_dict() == {"pe1d": 2 / 6, "pe2d": 4 / 6}


def test_pareto_front_per_group_and_colour_is_not_an_objective():
    df = pd.DataFrame({"lat": [1, 2, 3, 1, 2], "energy": [3, 2, 1, 1, 2], "area": [9, 9, 0, 5, 0],
                       "workload": ["a", "a", "a", "b", "b"]})
    fig = plots.pareto_plot(df, "lat", "energy", color="area", group="workload")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # a: all three points trade latency for energy; b: (1, 1) dominates (2, 2) whatever its area
    assert "front workload=a (3)" in labels and "front workload=b (1)" in labels
