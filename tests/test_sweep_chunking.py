"""Chunk sizes follow the measured cost of a point: bounded in time, spread over the tail."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.sweep.chunking import ChunkSizer


@settings(max_examples=40, deadline=None)
@given(total=st.integers(1, 20_000), cost_s=st.floats(1e-5, 2.0), slots=st.integers(1, 8),
       target_s=st.floats(0.05, 2.0))
def test_sizes_cover_every_point_once_and_respect_time_and_share(total, cost_s, slots, target_s):
    sizer = ChunkSizer(target_s, 4096, slots)
    remaining, sizes = total, []
    while remaining:
        size = sizer.next_size(remaining)
        if not sizes:
            assert size == 1  # nothing measured yet: one point, to measure
        else:  # the bounds, computed independently of the sizer's formula order
            assert 1 <= size <= max(1, min(4096, math.floor(target_s / cost_s), math.ceil(remaining / slots)))
        sizes.append(size)
        remaining -= size
        sizer.observe(size, size * cost_s)
    assert sum(sizes) == total
    if cost_s * 4 < target_s and total > 100 * slots:  # cheap points are batched, not sent one by one
        assert max(sizes) > 1


def test_a_fixed_size_overrides_the_measurement():
    sizer = ChunkSizer(1.0, 4096, 2, fixed=150)
    assert [sizer.next_size(r) for r in (1000, 150, 40)] == [150, 150, 40]


@settings(max_examples=30, deadline=None)
@given(total=st.integers(1, 5_000), cost_s=st.floats(1e-5, 0.5), slots=st.integers(1, 8),
       min_s=st.floats(0.01, 0.2))
def test_a_minimum_range_keeps_the_tail_from_shrinking_to_single_cheap_points(total, cost_s, slots, min_s):
    sizer = ChunkSizer(0.5, 4096, slots, min_s=min_s)
    remaining, sizes = total, []
    while remaining:
        size = sizer.next_size(remaining)
        sizes.append(size)
        remaining -= size
        sizer.observe(size, size * cost_s)
    assert sum(sizes) == total
    floor = min(4096, math.floor(min_s / cost_s))
    for i, size in enumerate(sizes[1:-1], start=1):  # not the first (measuring) nor the last (what is left)
        assert size >= min(floor, total - sum(sizes[:i])) - 1, (size, floor)


def test_points_already_done_do_not_teach_the_sizer_that_points_are_free(tmp_path, monkeypatch):
    """The sweep process evaluates a ``module:function`` evaluator's first point itself (to learn its
    metric types), so the first range computes nothing. Counting that range as one free point set the
    running mean near zero, and the next range was capped only by the even share of what was left
    (here 100 of 401 points, 1 s of work; on 80 COSMA points one range of 39). Ranges must stay near
    the time target instead."""
    from accelsim.sweep import SweepSpec, executors, run_sweep

    sizes: list[int] = []
    real = ChunkSizer.next_size

    def recording(self, remaining):
        size = real(self, remaining)
        sizes.append(size)
        return size

    monkeypatch.setattr(ChunkSizer, "next_size", recording)
    monkeypatch.setenv("ACCELSIM_TEST_SLEEP_S", "0.01")
    spec = SweepSpec.from_dict({"name": "sizes", "hardware": "tpu-v1", "evaluator": "tests.sweep_fixtures:slow",
                                "parameters": {"array.rows": {"range": {"start": 4, "stop": 404, "step": 1}}},
                                "workloads": [{"gemm": [8, 8, 8]}]}, allow_code=True)
    result = run_sweep(spec, tmp_path / "s", executor="process", workers=2, allow_code=True)
    assert result.computed == 401  # the range includes its stop
    per_range_limit = executors.POOL_CHUNK_S / 0.01  # 50 points of 10 ms
    assert sizes[0] == 1 and max(sizes) <= 1.5 * per_range_limit, sizes
