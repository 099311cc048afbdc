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
