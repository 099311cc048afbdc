"""Workers decode their own points: point ``i`` from ``i`` alone must be the parent's point ``i``.

The reference is ``SweepSpec.points()`` (``itertools.product`` over the grid, the seeded sample,
constraints, de-duplication), which the sweep no longer runs; the decoder (mixed-radix digits of
the index, shipped to workers by pickling) is checked against it for random grids and samples.
Also: the sweep process does not expand the points itself, a duplicate design is one row, and a
sweep interrupted and resumed on the pool gives the serial table exactly.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.sweep import SweepSpec, load_results, run_sweep
from accelsim.sweep.decode import PointSource
from accelsim.sweep.evaluators import engine_fingerprint, get_evaluator

ROOT = Path(__file__).resolve().parents[1]

_VALUES = {"array.rows": st.lists(st.sampled_from([4, 8, 16, 32, 64]), min_size=1, max_size=4),
           "array.cols": st.lists(st.sampled_from([4, 8, 16, 128]), min_size=1, max_size=3),
           "array.dataflow": st.lists(st.sampled_from(["os", "ws", "is"]), min_size=1, max_size=3, unique=True),
           "sram.ifmap_bytes": st.lists(st.sampled_from([4096, 65536, 1 << 20]), min_size=1, max_size=3)}


@st.composite
def specs(draw):
    names = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=0, max_size=4, unique=True))
    method = draw(st.sampled_from(["grid", "grid", "random", "lhs"]))
    params = {n: draw(_VALUES[n]) for n in names}  # lists may repeat a value: duplicate designs
    if method != "grid" and "array.rows" in params and draw(st.booleans()):
        params["array.rows"] = {"low": 4, "high": 100, "integer": True}
    data = {"parameters": params, "workloads": [{"gemm": list(g)} for g in draw(
        st.lists(st.tuples(*[st.integers(1, 300)] * 3), min_size=1, max_size=3, unique=True))]}
    if method != "grid":
        data["sampling"] = {"method": method, "samples": draw(st.integers(1, 25)), "seed": draw(st.integers(0, 9))}
    if "array.rows" in names and draw(st.booleans()):
        data["constraints"] = ["array.rows >= 8"]
    return data


def _source(spec: SweepSpec) -> PointSource:
    source = PointSource.of(spec, engine_fingerprint(get_evaluator(spec.evaluator.name)))
    return pickle.loads(pickle.dumps(source))  # what a worker receives


@settings(max_examples=12, deadline=None)
@given(data=specs())
def test_decoded_point_i_is_the_reference_point_i(data):
    spec = SweepSpec.from_dict(data)
    try:
        reference = spec.points().points
    except AccelsimError as err:  # every point removed by the constraint: the decoder must agree
        assert "no design points" in str(err)
        reference = []
    source = _source(spec)
    rows = spec.parameter_rows()
    assert source.raw_count == len(rows) * len(spec.workloads)
    for r, row in enumerate(rows):
        assert source.params_of_row(r) == row
    decoded, seen = [], set()
    for raw in reversed(range(source.raw_count)):  # out of order, as workers take ranges
        found = source.decode(raw)
        if found is not None:
            decoded.append(found[0])
    for point in sorted(decoded, key=lambda p: p.index):
        if point.key not in seen:  # first occurrence wins, as in the reference
            seen.add(point.key)
            ref = reference[len(seen) - 1]
            assert (point.key, point.params, point.hardware, point.workload, point.options) == \
                   (ref.key, ref.params, ref.hardware, ref.workload, ref.options)
    assert len(seen) == len(reference)


SLOW = {"name": "slow", "parameters": {"array.rows": {"range": {"start": 1, "stop": 160, "step": 1}}},
        "workloads": [{"gemm": [64, 32, 48]}], "evaluator": "tests.sweep_fixtures:slow"}
SCRIPT = f"""
import sys
from accelsim.sweep import run_sweep
try:
    run_sweep({SLOW!r}, sys.argv[1], executor="process", workers=2, allow_code=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_interrupted_then_resumed_sweep_is_the_serial_table(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELSIM_TEST_SLEEP_S": "0.02"}
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(list(out.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert child.poll() is None, child.communicate()
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    spec = SweepSpec.from_dict(SLOW, allow_code=True)
    from accelsim.sweep.store import ResultStore

    on_disk = ResultStore(out).statuses()
    assert 0 < len(on_disk) < 160
    resumed = run_sweep(spec, out, executor="process", workers=2)
    assert resumed.already_done == len(on_disk) and resumed.computed == 160 - len(on_disk)
    serial = run_sweep(spec, tmp_path / "serial", executor="serial")
    pd.testing.assert_frame_equal(load_results(out), load_results(serial.out_dir))
    assert not ResultStore(out).raw()["key"].duplicated().any()


def test_the_sweep_process_does_not_expand_the_points(tmp_path, monkeypatch):
    """Validating and hashing every design is the workers' job: the sweep process validates one
    design per swept value (the up-front check) and the one point it evaluates before the pool
    forks (so its imports are inherited), not one per point."""
    from accelsim.sweep import decode

    calls = []
    real = decode.apply_params

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, "apply_params", counting)
    values = {"array.rows": [8, 16, 24, 32, 40, 48], "array.cols": [8, 16, 32, 64], "array.dataflow": ["os", "ws", "is"]}
    spec = SweepSpec.from_dict({"parameters": values, "workloads": [{"gemm": [64, 48, 40]}], "evaluator": "systolic"})
    result = run_sweep(spec, tmp_path / "p", executor="process", workers=2)
    assert result.total == 72 and result.ok == 72
    assert len(calls) <= sum(len(v) for v in values.values()) + 1  # 14 here, not 72


def test_a_repeated_design_is_one_row_whatever_the_executor(tmp_path):
    spec = SweepSpec.from_dict({"parameters": {"array.rows": [8, 16, 8, 32, 16], "array.cols": [8, 8]},
                                "workloads": [{"gemm": [40, 24, 16]}], "evaluator": "systolic"})
    reference = spec.points()
    serial = run_sweep(spec, tmp_path / "s", executor="serial")
    pool = run_sweep(spec, tmp_path / "p", executor="process", workers=2, chunk_size=2)
    assert serial.total == pool.total == len(reference.points) == 3
    a, b = load_results(serial.out_dir), load_results(pool.out_dir)
    assert a["key"].tolist() == [p.key for p in reference.points]
    pd.testing.assert_frame_equal(a, b)


def test_a_combination_the_hardware_refuses_is_that_points_error_row(tmp_path, monkeypatch):
    """Each swept value alone is checked before any work; a combination refused only as a whole
    (a cross-field check) becomes the error row of its points, and the sweep goes on."""
    from accelsim.sweep import decode

    real = decode.apply_params

    def refusing(bases, overrides, options, params):
        if params.get("array.rows") == 16 and params.get("array.cols") == 32:
            raise AccelsimError("rows 16 with cols 32 is refused", field="array")
        return real(bases, overrides, options, params)

    monkeypatch.setattr(decode, "apply_params", refusing)
    spec = SweepSpec.from_dict({"parameters": {"array.rows": [8, 16], "array.cols": [8, 32]},
                                "workloads": [{"gemm": [40, 24, 16]}, {"gemm": [8, 8, 8]}], "evaluator": "systolic"})
    result = run_sweep(spec, tmp_path / "s", executor="serial")
    table = load_results(tmp_path / "s")
    bad = table[(table["array.rows"] == 16) & (table["array.cols"] == 32)]
    assert result.total == len(table) == 8 and result.failed == 2 == len(bad)
    assert (bad["status"] == "error").all() and bad["error"].str.contains("rows 16 with cols 32").all()
    assert (table.drop(bad.index)["status"] == "ok").all()
    assert run_sweep(spec, tmp_path / "s", executor="serial").computed == 0  # resumed: the error rows count
