"""COSMA: published optima of the tiny instance, exhaustive search, Belady's counter-example,
never worse than the baselines, and the independent replay agreeing with the ILP's objective."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from accelsim.engines.scratchpad import MappingViolation, replay
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.ir import Graph, TensorRole
from mappers import milp
from mappers.baselines import run_baselines, simulate
from mappers.cosma import budgets, min_peak_schedule, solve_cosma
from mappers.memory_problem import MemoryProblem
from tests.cosma_bruteforce import brute_force
from tests.cosma_graphs import graph_from_lists, random_dag, random_problems, tiny_graph

SOLVERS = ("cpsat", "highs", "cbc")


# --- the tiny instance of PAPERS.md -------------------------------------------------------------

@pytest.mark.parametrize("solver", SOLVERS)
def test_tiny_instance_published_optima(solver):
    g = tiny_graph()
    pb = MemoryProblem.from_graph(g)
    fixed200 = solve_cosma(pb, 200, mode="fixed", solver=solver, time_limit_s=30)
    assert (fixed200.non_compulsory_bytes, fixed200.status) == (20, "optimal")
    assert solve_cosma(pb, 210, mode="fixed", solver=solver, time_limit_s=30).non_compulsory_bytes == 0
    free200 = solve_cosma(pb, 200, solver=solver, time_limit_s=30)
    assert free200.non_compulsory_bytes == 0
    assert free200.schedule == ["op1", "op2", "op0", "op3"]
    for result, cap in ((fixed200, 200), (free200, 200)):
        assert replay(g, result.mapping, cap).non_compulsory_bytes == result.non_compulsory_bytes


def test_tiny_instance_infeasible_below_m_r():
    pb = MemoryProblem.from_graph(tiny_graph())
    with pytest.raises(InfeasibleError, match=r"needs 200 bytes"):
        solve_cosma(pb, 199)
    with pytest.raises(InfeasibleError):
        run_baselines(pb, 199)


def test_min_peak_schedule_of_tiny_instance():
    pb = MemoryProblem.from_graph(tiny_graph())
    peak = min_peak_schedule(pb)
    assert peak.peak_bytes == 200 and peak.status == "optimal"
    b = budgets(pb)
    assert (b["M_R"], b["M_P"], b["M_H"]) == (200, 200, 200)


# --- exhaustive search on random DAGs ---------------------------------------------------------------

# Seeds whose default order has more live bytes than M_R at some step (so the fixed order must
# spill): the first such seeds of random_dag(seed, 4 ops, sizes 1-3, 2 sources, p_edge 0.6) whose
# exhaustive search takes about 2 s or less; three of them also need traffic in the free order.
HARD_SEEDS = [1, 16, 22, 23, 24, 26, 29, 31]


def _instance(seed: int):
    ops, sizes = random_dag(seed, n_ops=4, max_size=3, n_sources=2, p_edge=0.6)
    return ops, sizes, MemoryProblem.from_lists(f"r{seed}", ops, sizes)


@pytest.mark.parametrize("seed", HARD_SEEDS)
def test_ilp_matches_exhaustive_search(seed):
    ops, sizes, pb = _instance(seed)
    cap = pb.m_r
    order = list(range(pb.n_ops))
    assert pb.peak_bytes(order) > cap  # the fixed order cannot avoid off-chip traffic
    want_free = brute_force(ops, sizes, cap)
    want_fixed = brute_force(ops, sizes, cap, order)
    got_free = solve_cosma(pb, cap, time_limit_s=20).non_compulsory_bytes
    got_fixed = solve_cosma(pb, cap, mode="fixed", order=order, time_limit_s=20).non_compulsory_bytes
    assert (got_free, got_fixed) == (want_free, want_fixed)
    assert want_fixed > 0


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_ilp_matches_exhaustive_search_with_slack(seed):
    """One byte above M_R, on random DAGs without the filter (loads only on demand to keep it fast)."""
    ops, sizes = random_dag(seed, n_ops=4, max_size=3, n_sources=1)
    pb = MemoryProblem.from_lists(f"s{seed}", ops, sizes)
    cap = pb.m_r + 1
    order = list(range(pb.n_ops))
    assert solve_cosma(pb, cap, time_limit_s=20).non_compulsory_bytes == brute_force(ops, sizes, cap, prefetch=False)
    assert solve_cosma(pb, cap, mode="fixed", time_limit_s=20).non_compulsory_bytes == \
        brute_force(ops, sizes, cap, order, prefetch=False)


@pytest.mark.parametrize("seed", range(4))
def test_backends_agree(seed):
    ops, sizes = random_dag(100 + seed, n_ops=5, max_size=4, n_sources=2)
    pb = MemoryProblem.from_lists("r", ops, sizes)
    got = {s: solve_cosma(pb, pb.m_r, solver=s, time_limit_s=30) for s in SOLVERS}
    assert all(r.status == "optimal" for r in got.values())
    assert len({r.non_compulsory_bytes for r in got.values()}) == 1


# --- baselines ------------------------------------------------------------------------------------

def belady_counter_example() -> Graph:
    """PAPERS.md: deficit 100, X = 150 used far ahead, Y = Z = 60 used soon (sizes in bytes).

    op0 reads X, Y, Z -> A (10); op1 A -> B (120) needs 100 bytes more than the 300-byte scratchpad
    has free; op2 B -> C; op3 Y, Z, C -> D; op4 X, D -> E.
    """
    X, Y, Z, A, B, C, D, E = range(8)
    ops = [([X, Y, Z], [A]), ([A], [B]), ([B], [C]), ([Y, Z, C], [D]), ([X, D], [E])]
    return graph_from_lists("belady", ops, [150, 60, 60, 10, 120, 10, 10, 10])


def test_greedy_beats_belady_on_the_counter_example():
    g = belady_counter_example()
    pb = MemoryProblem.from_graph(g)
    order = list(range(pb.n_ops))
    belady = simulate(pb, 300, order, "belady")
    greedy = simulate(pb, 300, order, "greedy")
    assert belady.non_compulsory_bytes(pb) == 150  # X reloaded
    assert greedy.non_compulsory_bytes(pb) == 120  # Y and Z reloaded
    cosma = solve_cosma(pb, 300, mode="fixed", order=order, warm_start=greedy)
    assert cosma.non_compulsory_bytes <= 120
    for plan in (belady, greedy):
        from mappers.plan import to_mapping

        assert replay(g, to_mapping(pb, plan, 300), 300).non_compulsory_bytes == plan.non_compulsory_bytes(pb)




@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problems(8))
def test_cosma_never_worse_than_baselines_and_replay_agrees(case):
    graph, pb, cap = case
    base = run_baselines(pb, cap)
    from mappers.plan import to_mapping

    for b in base:  # every baseline is a valid mapping with the traffic it claims
        assert replay(graph, to_mapping(pb, b.plan, cap), cap).non_compulsory_bytes == b.non_compulsory_bytes
    best = min(base, key=lambda b: b.non_compulsory_bytes)
    result = solve_cosma(pb, cap, warm_start=best.plan, time_limit_s=20)
    assert result.non_compulsory_bytes <= best.non_compulsory_bytes
    assert result.meta["warm_start_rejected"] is None
    assert replay(graph, result.mapping, cap).non_compulsory_bytes == result.non_compulsory_bytes


def test_with_weights_puts_weights_on_chip():
    X, W, A, B = range(4)
    g = graph_from_lists("w", [([X, W], [A]), ([A, W], [B])], [10, 30, 10, 10], roles={W: TensorRole.WEIGHT})
    acts, full = MemoryProblem.from_graph(g, False), MemoryProblem.from_graph(g, True)
    assert "t1" not in acts.tensor_names and "t1" in full.tensor_names
    assert (acts.m_r, full.m_r) == (20, 50)
    # at 50 bytes the weight cannot stay for op1 next to X... it can: X dies after op0. 0 bytes.
    assert solve_cosma(full, 50).non_compulsory_bytes == 0
    with pytest.raises(InfeasibleError, match="50"):
        solve_cosma(full, 49)


# --- time limits, bad input, the replay's own checks -----------------------------------------------

def test_time_limited_solve_is_never_worse_than_its_warm_start():
    ops, sizes = random_dag(7, n_ops=12, max_size=30, n_sources=3)
    pb = MemoryProblem.from_lists("big", ops, sizes)
    best = min(run_baselines(pb, pb.m_r), key=lambda b: b.non_compulsory_bytes)
    result = solve_cosma(pb, pb.m_r, warm_start=best.plan, time_limit_s=0.05, threads=1)
    assert result.non_compulsory_bytes <= best.non_compulsory_bytes
    assert result.status in ("optimal", "feasible", "baseline")
    assert result.gap is not None and 0.0 <= result.gap <= 1.0


def test_replay_rejects_broken_mappings():
    g = tiny_graph()
    pb = MemoryProblem.from_graph(g)
    good = solve_cosma(pb, 200, mode="fixed").mapping
    replay(g, good, 200)
    with pytest.raises(MappingViolation, match="exceeds"):
        replay(g, good, 150)
    overlap = dataclasses.replace(good, allocation=[dataclasses.replace(p, offset_bytes=0) for p in good.allocation])
    with pytest.raises(MappingViolation, match="overlaps"):
        replay(g, overlap, 200)
    no_reload = dataclasses.replace(good, events=[e for e in good.events if e.kind != "reload"])
    with pytest.raises(MappingViolation, match="no creation, load or reload"):
        replay(g, no_reload, 200)
    no_spill = dataclasses.replace(good, events=[e for e in good.events if e.kind != "spill"])
    with pytest.raises(MappingViolation, match="no earlier spill"):
        replay(g, no_spill, 200)
    missing = dataclasses.replace(good, allocation=[p for p in good.allocation if not (p.tensor == "t0" and p.start == 3)],
                                  events=[e for e in good.events if e.kind != "reload"])
    with pytest.raises(MappingViolation, match="not on chip"):
        replay(g, missing, 200)


def test_bad_input_is_one_clear_error():
    with pytest.raises(AccelsimError, match="positive"):
        graph_from_lists("zero", [([], [0])], [0])
    with pytest.raises(AccelsimError, match="unknown solver"):
        milp.solve(milp.LinearModel(), "gurobi")
    pb = MemoryProblem.from_graph(tiny_graph())
    with pytest.raises(AccelsimError, match="before its producer"):
        solve_cosma(pb, 300, mode="fixed", order=[2, 1, 0, 3])


def test_no_commercial_solver_anywhere():
    root = Path(__file__).resolve().parents[1]
    text = "".join(p.read_text() for p in (root / "mappers").glob("*.py"))
    assert milp.SOLVERS == ("cpsat", "highs", "cbc")
    assert not re.search(r"import\s+(gurobipy|cplex|docplex|xpress|mosek)", text)


@pytest.mark.parametrize("seed,commit_ops", [(0, None), (1, None), (2, None), (0, 2), (1, 2)])
def test_divide_and_conquer_is_valid_and_never_worse_than_its_warm_start(seed, commit_ops):
    from mappers.divide import divide_and_conquer

    ops, sizes = random_dag(200 + seed, n_ops=12, max_size=20, n_sources=2)
    graph = graph_from_lists("dc", ops, sizes)
    pb = MemoryProblem.from_graph(graph)
    best = min(run_baselines(pb, pb.m_r), key=lambda b: b.non_compulsory_bytes)
    result = divide_and_conquer(pb, pb.m_r, piece_ops=4, time_limit_s=10, warm_start=best.plan,
                                commit_ops=commit_ops)
    assert result.non_compulsory_bytes <= best.non_compulsory_bytes
    assert replay(graph, result.mapping, pb.m_r).non_compulsory_bytes == result.non_compulsory_bytes


def test_cpsat_still_works_after_highs_and_cbc_solves_in_this_process():
    """All back-ends now share the caller's process (highspy 1.16 no longer clashes with OR-Tools'
    libhighs); HiGHS's process-wide thread scheduler must also survive a change of thread count."""
    pb = MemoryProblem.from_graph(tiny_graph())
    for solver, threads in (("cbc", 1), ("highs", 2), ("highs", 1), ("cpsat", 1), ("highs", 2)):
        got = solve_cosma(pb, 200, mode="fixed", solver=solver, time_limit_s=10, threads=threads)
        assert (got.non_compulsory_bytes, got.status) == (20, "optimal")
