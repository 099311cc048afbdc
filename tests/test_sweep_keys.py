"""Fast key hashing gives exactly the keys of the reference ``point_key`` (resumed results stay valid)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import accelsim
from accelsim.sweep import SweepSpec
from accelsim.sweep.evaluators import engine_fingerprint, get_evaluator
from accelsim.sweep.spec import PointKeys, point_key
from accelsim.sweep.workloads import normalize_workloads, workload_fingerprint


def _common(spec: SweepSpec) -> dict:
    evaluator = get_evaluator(spec.evaluator.name)
    return {"evaluator": spec.evaluator.name, "metrics": spec.metrics, "derived": spec.derived,
            "accelsim": accelsim.__version__, "engine": engine_fingerprint(evaluator)}


@settings(max_examples=8, deadline=None)
@given(rows=st.lists(st.sampled_from([8, 16, 32, 64]), min_size=1, max_size=3, unique=True),
       dataflows=st.lists(st.sampled_from(["os", "ws", "is"]), min_size=1, max_size=3, unique=True),
       gemms=st.lists(st.tuples(*[st.integers(1, 512)] * 3), min_size=1, max_size=2, unique=True),
       derived=st.sampled_from([{}, {"per_mac": "total_cycles / 2"}]))
def test_every_expanded_key_equals_the_reference_hash(rows, dataflows, gemms, derived):
    spec = SweepSpec.from_dict({"parameters": {"array.rows": rows, "array.dataflow": dataflows},
                                "workloads": [{"gemm": list(g)} for g in gemms],
                                "evaluator": {"name": "systolic"}, "derived": derived})
    common = _common(spec)
    workloads = normalize_workloads(spec.workloads)
    by_label = {w["label"]: (w, workload_fingerprint(w)) for w in workloads}
    for point in spec.points().points:
        workload, fingerprint = by_label[point.workload["label"]]
        assert point.key == point_key(point.hardware, workload, fingerprint, point.options, common)


def test_key_parts_that_collide_are_refused():
    import pytest

    with pytest.raises(ValueError, match="collide"):
        PointKeys({"hardware": 1})


def test_the_probed_row_equals_the_row_the_workers_build(tmp_path):
    """An evaluator that declares no metrics is probed in the parent, and the probed point's row is
    built from that one evaluation (not a second one). It must equal the row of a run that already
    knows the columns (the manifest copied over), where every row comes from the worker path."""
    import shutil

    import pandas as pd

    from accelsim.sweep import load_results, run_sweep

    spec = SweepSpec.from_dict({"parameters": {"array.rows": [8, 12, 16], "array.cols": [8, 32]},
                                "workloads": [{"gemm": [64, 48, 40]}], "evaluator": "tests.sweep_fixtures:analytic",
                                "derived": {"cycles_per_mac": "total_cycles / macs"}}, allow_code=True)
    probed = load_results(run_sweep(spec, tmp_path / "a", executor="serial").out_dir)
    from accelsim.sweep.store import ResultStore

    (tmp_path / "b").mkdir()
    shutil.copy(ResultStore(tmp_path / "a").manifest_path, ResultStore(tmp_path / "b").manifest_path)
    known = load_results(run_sweep(spec, tmp_path / "b", executor="serial").out_dir)
    assert (probed["status"] == "ok").all() and probed["cycles_per_mac"].notna().all()
    pd.testing.assert_frame_equal(probed, known)
