"""MoE routing statistics against seeded Monte Carlo, and decode bytes against the batch."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.roofline import einsum_traffic
from accelsim.errors import AccelsimError
from accelsim.ir import TensorRole
from workloads.models import load_model
from workloads.moe import expected_distinct_experts, route, sample_assignments, simulate_distinct_experts
from workloads.transformer import build_model


@given(tokens=st.integers(1, 40), experts=st.integers(2, 64), k=st.integers(1, 8), seed=st.integers(0, 100))
@settings(max_examples=20, deadline=None)
def test_distinct_experts_formula_matches_monte_carlo(tokens, experts, k, seed):
    k = min(k, experts)
    mean, se = simulate_distinct_experts(tokens, experts, k, trials=400, seed=seed)
    exact = expected_distinct_experts(tokens, experts, k)
    # 5 standard errors (plus a floor for the degenerate zero-variance cases)
    assert abs(mean - exact) <= 5 * se + 1e-9 + (0.05 if se == 0 else 0)


def test_sampling_is_top_k_without_replacement_and_seeded():
    a = sample_assignments(50, 16, 4, seed=3)
    assert a.shape == (50, 4)
    assert all(len(set(row)) == 4 for row in a)
    assert (a == sample_assignments(50, 16, 4, seed=3)).all()


def test_zipf_skew_touches_fewer_experts_than_uniform():
    uniform = expected_distinct_experts(32, 64, 2)
    skewed = np.mean([route(32, 64, 2, distribution="zipf", zipf_exponent=1.5, seed=s).distinct_experts
                      for s in range(20)])
    assert skewed < uniform
    r = route(32, 64, 2, distribution="zipf", seed=1)
    assert sum(r.tokens_per_expert) == 64 and r.processed == 64


def test_capacity_expectation_matches_monte_carlo():
    T, E, k, cf = 64, 8, 2, 1.0
    r = route(T, E, k, capacity_factor=cf)
    cap = math.ceil(cf * T * k / E)
    assert r.capacity == cap
    rng = np.random.default_rng(0)
    sims = []
    for _ in range(3000):
        counts = np.bincount(sample_assignments(T, E, k, seed=int(rng.integers(2**31))).ravel(), minlength=E)
        sims.append(np.minimum(counts, cap).sum())
    se = np.std(sims) / math.sqrt(len(sims))
    assert abs(np.mean(sims) - r.processed) < 5 * se
    assert r.dropped > 0


def test_histogram_routing_and_errors():
    r = route(4, 4, 2, histogram=[4, 4, 0, 0])  # the most skewed a top-2 step can be: k distinct per token
    assert r.distinct_experts == 2 and r.max_load == 4
    with pytest.raises(AccelsimError, match="histogram"):
        route(4, 4, 2, histogram=[1, 1, 1, 1])
    with pytest.raises(AccelsimError, match="at most 4 tokens"):  # 8 slots in one expert: impossible for top-2
        route(4, 4, 2, histogram=[8, 0, 0, 0])
    with pytest.raises(AccelsimError, match="top_k"):
        route(4, 4, 5)


def expert_weight_bytes_read(model) -> float:
    total = 0.0
    for e, n in model.einsums():
        if e.attrs.get("kind") != "moe_expert":
            continue
        roles = {t.name: t.role for t in e.tensors}
        total += n * sum(b for t, b in einsum_traffic(e).items() if roles[t] is TensorRole.WEIGHT)
    return total


def test_mixtral_decode_expert_bytes_follow_distinct_experts_then_saturate():
    cfg = load_model("mixtral-8x7b")
    E, k = 8, 2
    all_experts = 32 * E * 3 * 4096 * 14336 * 2  # layers x experts x (up, gate, down) x d x f x bytes
    previous = 0.0
    for b in (1, 2, 4, 8, 16, 64, 256):
        got = expert_weight_bytes_read(build_model(cfg, "decode", batch=b, context=128))
        assert got == pytest.approx(all_experts * expected_distinct_experts(b, E, k) / E)
        assert got >= previous
        previous = got
    assert previous == pytest.approx(all_experts, rel=1e-9)
    one = expert_weight_bytes_read(build_model(cfg, "decode", batch=1, context=128))
    assert one == pytest.approx(all_experts * k / E)  # batch 1 reads exactly top-k experts


def test_moe_expert_flops_count_only_routed_tokens():
    cfg = load_model("mixtral-8x7b")
    from accelsim.engines.roofline import einsum_flops

    m = build_model(cfg, "prefill", batch=2, seq=16)
    flops = sum(einsum_flops(e) * n for e, n in m.einsums() if e.attrs.get("kind") == "moe_expert")
    assert flops == pytest.approx(32 * 3 * 2 * (2 * 16 * 2) * 4096 * 14336)  # 3 GEMMs, 2 FLOP/MAC, T*k tokens


@pytest.mark.parametrize("name, active, half_unit", [
    ("mixtral-8x7b", 12.9e9, 0.05e9),  # Mistral AI: "12.9B used per token"
    ("deepseek-v3", 37e9, 0.5e9),  # DeepSeek-V3 report: "37B activated for each token"
])
def test_batch1_decode_weight_reads_match_published_active_parameters(name, active, half_unit):
    """Weights read by a batch-1 decode step = the published 'active' parameters.

    Publications differ on whether the embedding table counts as active (decode reads one row of
    it), so the derived value is the interval [weights read, weights read + table]; the published
    figure, rounded to the digits it is given with, must overlap it.
    """
    from accelsim.engines.roofline import roofline

    cfg = load_model(name)
    rep = roofline(build_model(cfg, "decode", batch=1, context=1), "h100-sxm")
    read = rep.totals["bytes_by_role"]["weight"] / cfg.dtype_bytes
    table = cfg.vocab_size * cfg.hidden_size
    assert read - half_unit <= active <= read + table + half_unit
