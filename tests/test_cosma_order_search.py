"""The order-search lower bound (mappers/order_search.py) against exhaustive search and against itself.

Independent checks: the exhaustive search of ``tests/cosma_bruteforce.py`` (which shares none of
the bound's reasoning), a recomputation of every node from scratch (for the parent-reuse rule),
and monotonicity in effort.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappers import order_search
from mappers.bounds import Precedence, static_lower_bound, tight_ops
from mappers.memory_problem import MemoryProblem
from mappers.order_search import order_search_bound
from tests.cosma_bruteforce import brute_force
from tests.cosma_graphs import random_dag
from tests.test_cosma_order_bounds import aspp4_like, aspp_like


@st.composite
def small_problems(draw):
    """Random DAGs small enough for the exhaustive search with prefetching, capacity near M_R."""
    seed = draw(st.integers(0, 100_000))
    ops, sizes = random_dag(seed, n_ops=draw(st.integers(4, 5)), max_size=3, n_sources=draw(st.integers(1, 2)),
                            p_edge=draw(st.sampled_from([0.25, 0.45])))
    pb = MemoryProblem.from_lists(f"s{seed}", ops, sizes)
    top = min(pb.m_r + 1, max(pb.m_r, pb.peak_bytes(list(range(pb.n_ops)))))
    return ops, sizes, pb, draw(st.integers(pb.m_r, top))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems(), st.sampled_from([1, 4, 50]))
def test_order_search_never_exceeds_the_exhaustive_optimum(case, nodes):
    ops, sizes, pb, cap = case
    want = brute_force(ops, sizes, cap, prefetch=pb.n_ops <= 4)
    got = order_search_bound(pb, cap, max_nodes=nodes)
    assert static_lower_bound(pb, cap).bytes <= got.bytes <= want


@pytest.mark.parametrize("seed", range(6))
def test_order_search_on_the_aspp_families(seed):
    """Where the order matters (three or four branches waiting for a join): never above the
    exhaustive optimum (tightness on the three-branch shape: the next test)."""
    rng = random.Random(seed)
    if seed % 2:
        ops = aspp4_like()
        sizes = [rng.randint(1, 3), *(rng.randint(1, 2) for _ in range(7))]
    else:
        ops, _ = aspp_like()
        sizes = [rng.randint(1, 3), *(rng.randint(1, 2) for _ in range(5))]
    pb = MemoryProblem.from_lists("aspp", ops, sizes)
    cap = pb.m_r + rng.randint(0, 1)
    want = brute_force(ops, sizes, cap, prefetch=False)
    assert order_search_bound(pb, cap, max_nodes=200).bytes <= want


def test_order_search_is_tight_on_aspp_where_the_order_free_bound_is_not():
    ops, sizes = aspp_like()
    pb = MemoryProblem.from_lists("aspp", ops, sizes)
    assert static_lower_bound(pb, 3).bytes < 4
    got = order_search_bound(pb, 3, max_nodes=50)
    assert got.bytes == brute_force(ops, sizes, 3) == 4
    assert got.closed is False  # no upper bound given
    assert order_search_bound(pb, 3, max_nodes=50, upper_bytes=4).closed


@pytest.mark.parametrize("seed", range(3))
def test_more_nodes_never_give_a_smaller_bound(seed):
    ops, sizes = random_dag(700 + seed, n_ops=12, max_size=8, n_sources=2, p_edge=0.25)
    pb = MemoryProblem.from_lists("m", ops, sizes)
    cap = pb.m_r
    bounds = [order_search_bound(pb, cap, max_nodes=n).bytes for n in (0, 2, 8, 32)]
    assert bounds == sorted(bounds)


@pytest.mark.parametrize("seed", range(4))
def test_reused_parent_terms_equal_terms_recomputed_from_scratch(seed, monkeypatch):
    """The search reuses a parent's term where ``_unchanged`` says the new edge cannot change it;
    recomputing every term of every node must give the same node bounds."""
    ops, sizes = random_dag(800 + seed, n_ops=11, max_size=8, n_sources=2, p_edge=0.25)
    pb = MemoryProblem.from_lists("r", ops, sizes)
    cap = pb.m_r
    fast = order_search_bound(pb, cap, max_nodes=24)
    monkeypatch.setattr(order_search, "_unchanged", lambda *a: False)
    slow = order_search_bound(pb, cap, max_nodes=24)
    assert (fast.bytes, fast.nodes, fast.open_nodes) == (slow.bytes, slow.nodes, slow.open_nodes)


def test_extra_edges_only_shrink_candidates_so_tight_ops_suffice():
    """The search evaluates only ``tight_ops`` of the graph: under added edges no other operator
    gains a term (checked against a full recomputation)."""
    ops, sizes = random_dag(901, n_ops=10, max_size=8, n_sources=2, p_edge=0.25)
    pb = MemoryProblem.from_lists("t", ops, sizes)
    cap = pb.m_r
    tight = set(tight_ops(pb, cap))
    rng = random.Random(1)
    edges: list[tuple[int, int]] = []
    for _ in range(4):
        a, b = rng.sample(range(pb.n_ops), 2)
        if a not in Precedence.of(pb, tuple(edges)).descendants[b]:
            edges.append((a, b))
    prec = Precedence.of(pb, tuple(edges))
    whole = static_lower_bound(pb, cap, prec=prec)
    assert set(whole.per_op) <= tight
    assert static_lower_bound(pb, cap, prec=prec, ops=sorted(tight)).bytes == whole.bytes


def test_the_search_stops_at_a_node_that_orders_every_tight_operator():
    """A chain has one order: the root is a leaf, and no node budget changes the bound."""
    ops = [([0], [1]), ([1], [2]), ([2], [3])]
    pb = MemoryProblem.from_lists("chain", ops, [2, 1, 2, 1])
    got = order_search_bound(pb, pb.m_r, max_nodes=100)
    assert got.at_leaf and got.nodes == 0
    assert got.bytes == static_lower_bound(pb, pb.m_r).bytes


def test_covering_counts_each_stretch_off_chip_between_two_uses():
    """X (2 B) is read by three operators, and between each two an operator fills the 4-byte
    scratchpad: X leaves twice, so it is spilled once and reloaded twice (6 B). The per-tensor
    covering counted X once (4 B); the per-stretch one, the exhaustive search and the ILP agree on 6."""
    S, X, A, B, Bs, C, D, Ds, E = range(9)
    ops = [([S], [X]), ([X], [A]), ([A], [B]), ([B], [Bs]), ([X, Bs], [C]), ([C], [D]), ([D], [Ds]),
           ([X, Ds], [E])]
    sizes = [1, 2, 1, 3, 1, 1, 3, 1, 1]
    pb = MemoryProblem.from_lists("stretches", ops, sizes)
    assert pb.m_r == 4
    want = brute_force(ops, sizes, 4, prefetch=False)
    assert static_lower_bound(pb, 4).bytes == want == 6
