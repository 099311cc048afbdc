"""COSMA lower bounds, formulations, divide-and-conquer effort, literal baselines and bad input.

The bounds are checked against things that do not share their reasoning: the exhaustive search of
``tests/cosma_bruteforce.py`` and the replayed cost of every plan any mapper produces.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings

from accelsim.engines.scratchpad import replay
from accelsim.errors import AccelsimError, InfeasibleError
from mappers import milp
from mappers.baselines import literal_baselines, run_baselines
from mappers.bounds import static_lower_bound
from mappers.cosma import solve_cosma
from mappers.cosma_model import CosmaModel
from mappers.divide import divide_and_conquer
from mappers.memory_problem import MemoryProblem
from mappers.plan import to_mapping
from tests.cosma_bruteforce import brute_force
from tests.cosma_graphs import graph_from_lists, random_dag, random_problems, tiny_graph
from tests.test_cosma import HARD_SEEDS, belady_counter_example


def _relaxation_bound(pb: MemoryProblem, cap: int, order=None) -> float:
    res = milp.solve(CosmaModel(pb, cap, order, addresses=False).m, "cpsat", 10, None, 1)
    assert res.status == "optimal"
    return res.objective


@pytest.mark.parametrize("seed", HARD_SEEDS)
def test_bounds_never_exceed_the_exhaustive_optimum(seed):
    ops, sizes = random_dag(seed, n_ops=4, max_size=3, n_sources=2, p_edge=0.6)
    pb = MemoryProblem.from_lists(f"r{seed}", ops, sizes)
    cap = pb.m_r
    order = list(range(pb.n_ops))
    free, fixed = brute_force(ops, sizes, cap), brute_force(ops, sizes, cap, order)
    assert static_lower_bound(pb, cap).bytes <= free
    assert _relaxation_bound(pb, cap) <= free
    assert _relaxation_bound(pb, cap, order) <= fixed
    # the original formulation (pairwise order binaries, no staging) agrees with the staged one
    old = solve_cosma(pb, cap, time_limit_s=10, threads=1, relaxation=False, overlap="pairs")
    assert old.non_compulsory_bytes == free and old.status == "optimal"


def test_static_bound_is_tight_where_it_should_be():
    """The ViT pattern: op3 (3 B in, 3 B out) fills the 6-byte scratchpad while ``a`` (read again by
    op5) must wait, and op1's output ``v`` can be made after op3 instead of before; either way one
    byte is live across op3, so it is spilled and reloaded (2 B), which the exhaustive search confirms."""
    ops = [([0], [1]), ([1], [2]), ([1], [3]), ([3], [4]), ([4, 2], [5]), ([5, 1], [6])]
    sizes = [1, 1, 1, 3, 3, 1, 1]
    pb = MemoryProblem.from_lists("vitlike", ops, sizes)
    cap = pb.m_r
    want = brute_force(ops, sizes, cap, prefetch=False)
    assert want > 0
    assert static_lower_bound(pb, cap).bytes == want == solve_cosma(pb, cap, time_limit_s=10, threads=1).best_bound




@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problems(9))
def test_lower_bounds_never_exceed_any_replayed_plan(case):
    graph, pb, cap = case
    plans = [b.plan for b in run_baselines(pb, cap)] + [b.plan for b in literal_baselines(pb, cap)]
    best = min(plans, key=lambda p: p.non_compulsory_bytes(pb))
    ilp = solve_cosma(pb, cap, warm_start=best, time_limit_s=10, threads=1)
    dc = divide_and_conquer(pb, cap, piece_ops=3, time_limit_s=5, warm_start=best, threads=1)
    plans += [ilp.plan, dc.plan]
    costs = [replay(graph, to_mapping(pb, p, cap), cap).non_compulsory_bytes for p in plans]
    assert costs[-2] == ilp.non_compulsory_bytes and costs[-1] == dc.non_compulsory_bytes
    # the bounds as proved, before make_result clamps each to its own plan's cost
    for bound in (static_lower_bound(pb, cap).bytes, ilp.meta.get("bound_unclamped_bytes", 0.0),
                  dc.meta.get("bound_unclamped_bytes", 0.0)):
        assert bound is not None and bound <= min(costs)
    assert 0.0 <= dc.gap <= 1.0 and 0.0 <= ilp.gap <= 1.0


@pytest.mark.parametrize("seed", range(3))
def test_more_divide_and_conquer_effort_is_never_worse(seed):
    ops, sizes = random_dag(300 + seed, n_ops=14, max_size=20, n_sources=2)
    graph = graph_from_lists("dc", ops, sizes)
    pb = MemoryProblem.from_graph(graph)
    cap = pb.m_r
    results = [divide_and_conquer(pb, cap, piece_ops=4, time_limit_s=10, threads=1, passes=k) for k in (1, 2, 3)]
    costs = [r.non_compulsory_bytes for r in results]
    assert costs[0] >= costs[1] >= costs[2]
    for r in results:
        assert replay(graph, r.mapping, cap).non_compulsory_bytes == r.non_compulsory_bytes
        assert r.best_bound <= r.non_compulsory_bytes


@pytest.mark.parametrize("solver", milp.SOLVERS)
def test_belady_counter_example_on_every_backend(solver):
    """PAPERS.md gives the baselines' costs (Belady 150 B, greedy 120 B); every back-end, in both
    formulations, must prove one optimum no worse than greedy (the exhaustive search is too slow
    here: 300 addresses)."""
    g = belady_counter_example()
    pb = MemoryProblem.from_graph(g)
    order = list(range(pb.n_ops))
    got = solve_cosma(pb, 300, mode="fixed", order=order, solver=solver, time_limit_s=20, threads=1)
    old = solve_cosma(pb, 300, mode="fixed", order=order, solver=solver, time_limit_s=20, threads=1,
                      relaxation=False, overlap="pairs")
    ref = solve_cosma(pb, 300, mode="fixed", order=order, solver="cpsat", time_limit_s=20, threads=1)
    assert got.status == old.status == ref.status == "optimal"
    assert got.non_compulsory_bytes == old.non_compulsory_bytes == ref.non_compulsory_bytes <= 120
    assert replay(g, got.mapping, 300).non_compulsory_bytes == got.non_compulsory_bytes


def test_literal_baselines_are_valid_and_never_better_than_offline_first():
    for seed in range(6):
        ops, sizes = random_dag(400 + seed, n_ops=8, max_size=20, n_sources=2)
        graph = graph_from_lists("lit", ops, sizes)
        pb = MemoryProblem.from_graph(graph)
        offline = {b.policy: b for b in run_baselines(pb, pb.m_r) if b.schedule == "default"}
        for lit in literal_baselines(pb, pb.m_r):
            cost = replay(graph, to_mapping(pb, lit.plan, pb.m_r), pb.m_r).non_compulsory_bytes
            assert cost == lit.non_compulsory_bytes >= offline[lit.policy].non_compulsory_bytes


def test_time_out_returns_best_plan_with_bound_and_gap():
    ops, sizes = random_dag(7, n_ops=14, max_size=30, n_sources=3)
    graph = graph_from_lists("big", ops, sizes)
    pb = MemoryProblem.from_graph(graph)
    best = min(run_baselines(pb, pb.m_r), key=lambda b: b.non_compulsory_bytes)
    r = solve_cosma(pb, pb.m_r, warm_start=best.plan, time_limit_s=0.05, threads=1)
    assert replay(graph, r.mapping, pb.m_r).non_compulsory_bytes == r.non_compulsory_bytes <= best.non_compulsory_bytes
    assert r.best_bound is not None and 0 <= r.best_bound <= r.non_compulsory_bytes
    assert r.gap == milp.relative_gap(r.non_compulsory_bytes, r.best_bound) or r.status == "optimal"
    assert r.mapping.meta["best_bound_bytes"] == r.best_bound


def test_bad_input_is_one_clear_error_each():
    pb = MemoryProblem.from_graph(tiny_graph())
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(AccelsimError, match="positive, finite"):
            solve_cosma(pb, 200, time_limit_s=bad)
        with pytest.raises(AccelsimError, match="positive, finite"):
            divide_and_conquer(pb, 200, time_limit_s=bad)
    with pytest.raises(InfeasibleError, match=r"operator 'op2' needs 200 bytes"):
        solve_cosma(pb, 150)
    with pytest.raises(InfeasibleError, match=r"tensor 't1' has 100 bytes, more than the scratchpad's 60"):
        solve_cosma(pb, 60)
    with pytest.raises(AccelsimError, match="cycle"):
        graph_from_lists("cyc", [([1], [0]), ([0], [1])], [4, 4])
    with pytest.raises(AccelsimError, match="before its producer"):
        MemoryProblem.from_lists("cyc", [([1], [0]), ([0], [1])], [4, 4])


def test_highspy_and_ortools_share_one_process_in_either_order():
    """The reason PuLP once ran in a child process is gone with highspy 1.16: check both import orders."""
    code = ("import sys; from mappers.memory_problem import MemoryProblem; from mappers.cosma import solve_cosma; "
            "from tests.cosma_graphs import tiny_graph; pb = MemoryProblem.from_graph(tiny_graph()); "
            "got = [solve_cosma(pb, 200, mode='fixed', solver=s, time_limit_s=10, threads=1).non_compulsory_bytes "
            "for s in sys.argv[1:]]; assert got == [20] * len(got), got; print('ok')")
    for order in (("highs", "cpsat", "highs", "cbc"), ("cpsat", "highs", "cpsat")):
        done = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:] + done.stdout


def test_backends_agree_on_r2plus1d_with_weights_from_a_warm_start():
    """Regression: HiGHS given a MIP start once called the start (77070336 B) optimal here; the
    cumulative relaxation alone shows it cannot be, since every back-end finds a cheaper solution."""
    from mappers.baselines import best_baseline
    from workloads.cnn import build_network

    pb = MemoryProblem.from_graph(build_network("r2plus1d-18"), True)
    base = best_baseline(pb, pb.m_r)
    rel = CosmaModel(pb, pb.m_r, addresses=False)
    got = {s: milp.solve(rel.m, s, 20, rel.encode(base.plan), 1) for s in ("cpsat", "highs")}
    assert got["cpsat"].status == got["highs"].status == "optimal"
    assert got["cpsat"].objective == got["highs"].objective < base.non_compulsory_bytes


def test_highs_relaxation_optimum_matches_cpsat_on_deeplabv3_with_weights():
    """Regression: HiGHS 1.16 with presolve called 803328 B optimal here; 802816 B is feasible."""
    from workloads.cnn import build_network

    pb = MemoryProblem.from_graph(build_network("deeplabv3-resnet50"), True)
    rel = CosmaModel(pb, pb.m_r, addresses=False)
    got = {s: milp.solve(rel.m, s, 20, None, 1) for s in ("cpsat", "highs")}
    assert got["cpsat"].status == got["highs"].status == "optimal"
    assert got["cpsat"].objective == got["highs"].objective
