"""The order-branching lower bound (mappers/order_bounds.py) against exhaustive search.

Checked against things that share none of its reasoning: the exhaustive search of
``tests/cosma_bruteforce.py`` (with prefetching, so nothing the ILP prunes is assumed) and a
slow transitive closure for the precedence it branches on.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappers.bounds import Precedence, static_lower_bound, tight_ops
from mappers.cosma import solve_cosma
from mappers.memory_problem import MemoryProblem
from mappers.order_bounds import order_branching_bound
from tests.cosma_bruteforce import brute_force
from tests.cosma_graphs import random_dag


def aspp_like() -> tuple[list, list[int]]:
    """DeepLabV3's ASPP in miniature: three branches read X (2 B) and each fill the 3-byte
    scratchpad; their 1-byte outputs meet in two adds. Whichever branch runs second or third
    finds an earlier output (or the first add's) waiting, so traffic is forced."""
    X, B1, B2, B3, C1, C2 = range(6)
    return [([X], [B1]), ([X], [B2]), ([X], [B3]), ([B1, B2], [C1]), ([C1, B3], [C2])], [2, 1, 1, 1, 1, 1]


def test_order_branching_is_tight_on_the_aspp_pattern():
    ops, sizes = aspp_like()
    pb = MemoryProblem.from_lists("aspp", ops, sizes)
    cap = pb.m_r
    want = brute_force(ops, sizes, cap)
    static = static_lower_bound(pb, cap).bytes
    got = order_branching_bound(pb, cap)
    assert static < want  # the per-operator bound cannot see it
    assert got.bytes == want == 4
    assert sorted(got.group) == [0, 1, 2]
    res = solve_cosma(pb, cap, time_limit_s=10, threads=1)
    assert res.non_compulsory_bytes == want and res.status == "optimal"


def test_disjunctive_covering_adds_up_two_aspp_blocks():
    """Two ASPP blocks in series: each forces 4 B, which no single group's bound sees together;
    the disjunctive covering (one order selector per group) proves their sum, the exhaustive
    optimum (on-demand loads, to keep the search short) and the ILP's."""
    X, B1, B2, B3, C1, C2, Y, D1, D2, D3, E1, E2 = range(12)
    ops = [([X], [B1]), ([X], [B2]), ([X], [B3]), ([B1, B2], [C1]), ([C1, B3], [C2]), ([C2], [Y]),
           ([Y], [D1]), ([Y], [D2]), ([Y], [D3]), ([D1, D2], [E1]), ([E1, D3], [E2])]
    sizes = [2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1]
    pb = MemoryProblem.from_lists("aspp2", ops, sizes)
    got = order_branching_bound(pb, 3)
    assert got.group == ()  # the disjunctive covering, not one group, gave it
    want = brute_force(ops, sizes, 3, prefetch=False)
    assert got.bytes == want == 8
    assert solve_cosma(pb, 3, time_limit_s=20, threads=1, static_bound=False, relaxation=False).non_compulsory_bytes == 8


@st.composite
def small_problems(draw):
    """Random DAGs small enough for the exhaustive search with prefetching (sizes 1-3, 4 operators),
    the capacity within 1 byte of M_R (where traffic is forced; larger ones make the search slow)."""
    seed = draw(st.integers(0, 100_000))
    ops, sizes = random_dag(seed, n_ops=4, max_size=3, n_sources=draw(st.integers(1, 2)),
                            p_edge=draw(st.sampled_from([0.35, 0.6])))
    pb = MemoryProblem.from_lists(f"o{seed}", ops, sizes)
    top = min(pb.m_r + 1, max(pb.m_r, pb.peak_bytes(list(range(pb.n_ops)))))
    return ops, sizes, pb, draw(st.integers(pb.m_r, top))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems(), st.sampled_from([2, 3]))
def test_order_branching_bound_never_exceeds_the_exhaustive_optimum(case, group_size):
    ops, sizes, pb, cap = case
    got = order_branching_bound(pb, cap, group_size=group_size, max_groups=6)
    want = brute_force(ops, sizes, cap)
    assert 0 <= got.bytes <= want


@pytest.mark.parametrize("seed", range(8))
def test_order_branching_bound_on_the_aspp_family(seed):
    """Random sizes on the ASPP shape (where branching matters), against exhaustive search."""
    rng = random.Random(seed)
    ops, _ = aspp_like()
    sizes = [rng.randint(1, 3), *(rng.randint(1, 2) for _ in range(5))]
    pb = MemoryProblem.from_lists("aspp", ops, sizes)
    cap = pb.m_r + rng.randint(0, 1)
    got = order_branching_bound(pb, cap, group_size=rng.choice([2, 3]), max_groups=6).bytes  # several groups:
    assert got <= brute_force(ops, sizes, cap)  # the disjunctive covering takes part


@pytest.mark.parametrize("seed", range(6))
def test_precedence_with_extra_edges_is_the_transitive_closure(seed):
    rng = random.Random(seed)
    ops, sizes = random_dag(500 + seed, n_ops=9, max_size=5, n_sources=2, p_edge=0.3)
    pb = MemoryProblem.from_lists("p", ops, sizes)
    edges = []
    for _ in range(3):  # edges that keep it acyclic: between operators the graph leaves unordered
        a, b = rng.sample(range(pb.n_ops), 2)
        trial = Precedence.of(pb, tuple(edges))
        if a not in trial.descendants[b] and a != b:
            edges.append((a, b))
    prec = Precedence.of(pb, tuple(edges))
    succ = {o: set() for o in range(pb.n_ops)}
    for c in range(pb.n_ops):
        for p in pb.preds[c]:
            succ[p].add(c)
    for a, b in edges:
        succ[a].add(b)

    def reach(o):
        seen, todo = set(), [o]
        while todo:
            for s in succ[todo.pop()]:
                if s not in seen:
                    seen.add(s)
                    todo.append(s)
        return seen

    for o in range(pb.n_ops):
        assert prec.descendants[o] == reach(o)
        assert prec.ancestors[o] == {u for u in range(pb.n_ops) if o in reach(u)}
    if edges:
        a, b = edges[0]
        with pytest.raises(ValueError, match="cycle"):
            Precedence.of(pb, (*edges, (b, a)))


def test_tight_ops_are_the_only_ones_with_terms():
    """Operators outside ``tight_ops`` never contribute: the bound restricted to them is the same."""
    for seed in range(5):
        ops, sizes = random_dag(600 + seed, n_ops=8, max_size=6, n_sources=2)
        pb = MemoryProblem.from_lists("t", ops, sizes)
        cap = pb.m_r
        assert static_lower_bound(pb, cap, ops=tight_ops(pb, cap)).bytes == static_lower_bound(pb, cap).bytes


def aspp4_like() -> list:
    """ASPP with four branches off X, joined by a chain of three adds (groups of four unordered operators)."""
    X, B1, B2, B3, B4, C1, C2, C3 = range(8)
    return [([X], [B1]), ([X], [B2]), ([X], [B3]), ([X], [B4]), ([B1, B2], [C1]), ([C1, B3], [C2]), ([C2, B4], [C3])]


@pytest.mark.parametrize("seed, prefetch", [(4, True), (5, True)])
def test_four_operator_groups_never_exceed_the_exhaustive_optimum(seed, prefetch):
    """Divide and conquer branches on groups of four (24 orders each); random sizes on a four-branch
    ASPP, against exhaustive search (with prefetching where it is fast)."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 3), *(rng.randint(1, 2) for _ in range(7))]
    ops = aspp4_like()
    pb = MemoryProblem.from_lists("aspp4", ops, sizes)
    cap = pb.m_r + rng.randint(0, 1)
    from mappers.order_bounds import _groups

    assert any(len(g) == 4 for g in _groups(pb, cap, tight_ops(pb, cap), 4, 6))  # groups of four are searched
    got = order_branching_bound(pb, cap, group_size=4, max_groups=6)
    assert 0 <= got.bytes <= brute_force(ops, sizes, cap, prefetch=prefetch)
