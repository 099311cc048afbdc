"""KV-cache capacity admission: the budget from the model graph, rejected and queued requests."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from workloads.models import load_model
from workloads.serving import serve
from workloads.serving_cost import StepCost
from workloads.serving_loop import kv_need, run_schedule
from workloads.serving_memory import kv_budget
from workloads.serving_trace import Request, trace_from_lists


class FlatCosts:
    """Every iteration takes 1 ms: the schedule alone decides the outcome."""

    def decode(self, batch: int, kv_tokens_total: int) -> StepCost:
        return StepCost(1e-3, 0.0, 0.0)

    def prefill(self, input_len: int) -> StepCost:
        return StepCost(1e-3, 0.0, 0.0)


def test_budget_is_the_closed_form_of_the_model():
    cfg = load_model("llama-2-7b")
    b = kv_budget(cfg, "a100-80gb")
    # K and V of every layer: 2 x 32 layers x 32 KV heads x 128 x 2 bytes = 512 KiB per token
    assert b.kv_bytes_per_token == 2 * 32 * 32 * 128 * 2
    assert b.capacity_bytes == load_hardware("a100-80gb").memory.capacity_bytes
    assert b.tokens == (b.capacity_bytes - b.weight_bytes) // b.kv_bytes_per_token
    # GQA and tensor parallelism come from the graph: Llama-2-70B has 8 KV heads, split 2 ways at tp 2
    b70 = kv_budget(load_model("llama-2-70b"), "hbm3-pim", tp=2)
    assert b70.kv_bytes_per_token == 2 * 80 * 4 * 128 * 2


def test_weights_that_do_not_fit_say_how_many_bytes_are_missing():
    with pytest.raises(AccelsimError, match="bytes missing"):
        _ = kv_budget(load_model("llama-2-70b"), "gddr6-aim").tokens


def test_too_long_requests_are_rejected_and_others_wait_for_memory():
    # budget 300 tokens: each 100 + 50 request reserves 149, so two run at once; 400 + 10 never fits
    trace = trace_from_lists([100, 100, 100, 400], [50, 50, 50, 10])
    records, iterations = run_schedule(trace, FlatCosts(), batch_limit=4, kv_capacity_tokens=300)
    by = {r.request.rid: r for r in records}
    assert by[3].rejected and by[3].tokens == 0
    assert not any(r.rejected for rid, r in by.items() if rid != 3)
    assert all(r.tokens == r.request.output_len for rid, r in by.items() if rid != 3)
    assert max(it.batch for it in iterations if it.phase == "decode") == 2
    assert by[2].waited_for_memory and by[2].first_token_s > by[1].first_token_s
    # without the limit all three run together
    _, free = run_schedule(trace, FlatCosts(), batch_limit=4)
    assert max(it.batch for it in free if it.phase == "decode") == 4


@settings(deadline=None, max_examples=25)
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 30), st.floats(0, 0.05)), min_size=1, max_size=12),
       st.integers(0, 200), st.integers(1, 6))
def test_cached_tokens_never_exceed_the_budget(rows, capacity, limit):
    trace = [Request(i, a, n_in, n_out) for i, (n_in, n_out, a) in enumerate(rows)]
    records, iterations = run_schedule(trace, FlatCosts(), batch_limit=limit, kv_capacity_tokens=capacity)
    for it in iterations:
        if it.phase == "decode":
            assert it.kv_tokens_total <= capacity
    for r in records:
        assert r.rejected == (kv_need(r.request) > capacity)
        assert r.tokens == (0 if r.rejected else r.request.output_len)


def test_serve_reports_rejected_and_queued_requests():
    trace = trace_from_lists([100, 100, 400], [50, 50, 10])
    s = serve(trace, FlatCosts(), batch_limit=4, kv_capacity_tokens=300).summary()
    assert (s["rejected"], s["queued_for_memory"], s["kv_capacity_tokens"]) == (1, 0, 300)
    assert s["tokens"] == 100
