"""The tiling search against plain exhaustive enumeration, and against SCALE-Sim's fold order."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.loopnest import evaluate
from accelsim.engines.systolic import simulate_gemm
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware import load_hardware
from accelsim.ir import GemmShape
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LoopProblem,
    StorageLevel,
    check_capacities,
    validate_nest,
)
from mappers.tiling import OBJECTIVES, map_problem, search
from mappers.tiling.hardware import scalesim_fold_nest, systolic_hierarchy
from tests.tiling_bruteforce import assert_search_matches_brute_force


@st.composite
def instances(draw):
    problem = LoopProblem.gemm(draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 3, 4])),
                               draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 1, 2])),
                               dtype_bytes=draw(st.sampled_from([1, 2])))
    depth = draw(st.sampled_from([2, 3]))
    grid_at = draw(st.sampled_from([None, 1, 2])) if depth == 3 else None  # a grid of cores above level 0 or 1
    levels = []
    for j in range(depth):
        outer = j == depth - 1
        fos: tuple = ()
        if j == 0:
            fos = tuple(Fanout(n, draw(st.sampled_from([2, 3, 4]))) for n in ("rows", "cols")[:draw(st.integers(0, 2))])
        elif j == grid_at:
            fos = (Fanout("cores", draw(st.sampled_from([2, 3])), waves=True, allowed_ranks=frozenset({"b", "m", "n"})),)
        per_operand = not outer and draw(st.booleans())
        cap = None if outer else draw(st.sampled_from([8, 16, 32, 64, 256]))
        levels.append(StorageLevel(
            f"L{j}", None if per_operand else cap,
            {"A": cap, "B": cap // 2, "C": cap} if per_operand else None,
            None if j == 0 and draw(st.booleans()) else float(draw(st.sampled_from([1, 2, 8]))),
            float(draw(st.integers(0, 4))), float(draw(st.integers(0, 4))),
            double_buffered=not outer and draw(st.booleans()), fanouts=fos))
    hierarchy = Hierarchy("h", tuple(levels), 1e9, float(draw(st.integers(0, 2))))
    return problem, hierarchy, draw(st.sampled_from(OBJECTIVES))


def _close(a: tuple, b: tuple) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(a, b))


@settings(max_examples=50, deadline=None)
@given(instances())
def test_search_proves_the_exhaustive_optimum(case):
    assert_search_matches_brute_force(*case)


def test_time_limit_returns_the_best_found_with_a_sound_gap():
    hw = load_hardware("a100-cores")
    problem = LoopProblem.gemm(32768, 32768, 32768)  # about 20 s to prove with tie-breaks
    r = search(problem, hw.hierarchy(), "latency", 0.05)
    assert r.status == "time_limit"
    validate_nest(r.nest, problem, hw.hierarchy())
    assert 0 <= r.bound <= r.value and 0 <= r.gap <= 1
    # every open node's bound includes the compute at full use of all MACs
    assert r.bound >= problem.points / hw.peak_macs_per_cycle
    assert r.gap == pytest.approx((r.value - r.bound) / r.value)


def test_an_infeasible_hierarchy_names_the_level():
    problem = LoopProblem.gemm(4, 4, 4, dtype_bytes=2)
    hierarchy = Hierarchy("h", (StorageLevel("pe", 4), StorageLevel("dram", None, bandwidth_bytes_per_cycle=1.0)), 1e9)
    with pytest.raises(InfeasibleError, match="level pe") as info:
        search(problem, hierarchy, "dram", 5)
    assert info.value.field == "level pe"


@pytest.mark.parametrize("preset", ["scalesim-scale", "scalesim-eyeriss", "scalesim-google"])
@pytest.mark.parametrize("shape", [(16, 8, 8), (64, 48, 32), (1024, 16, 4), (128, 96, 64)])
def test_never_worse_than_the_scalesim_fold_order(preset, shape):
    hw = load_hardware(preset)
    m, k, n = shape
    a, b = hw.array.rows, hw.array.cols
    m, k, n = {"os": (m * a, k, n * b), "ws": (m, k * a, n * b), "is": (m * b, k * a, n)}[hw.array.dataflow]
    problem = LoopProblem.gemm(m, k, n, dtype_bytes=hw.word_bytes)
    hierarchy = systolic_hierarchy(hw)
    r = map_problem(problem, hw, "dram", 30)
    assert r.status == "optimal"
    fixed = scalesim_fold_nest(problem, hw)
    assert fixed is not None
    compulsory = sum(problem.compulsory_bytes().values())
    try:
        check_capacities(fixed, problem, hierarchy)
        assert r.cost.dram_bytes <= evaluate(fixed, problem, hierarchy).dram_bytes
    except AccelsimError:
        pass  # the fold's tile does not fit the buffer halves: that schedule is not in the space
    # the engine's double-buffer model of the same fold order on the same buffers and DRAM
    scalesim = simulate_gemm(GemmShape(m, k, n), hw)
    engine_dram = scalesim["dram_read_bytes"] + scalesim["dram_write_bytes"]
    assert compulsory <= r.cost.dram_bytes <= engine_dram
    if engine_dram == compulsory:
        assert r.cost.dram_bytes == compulsory


def test_padding_never_costs_less_than_the_real_problem_and_helps_prime_extents():
    from accelsim.hardware import spec_from_dict
    from tests.test_multicore_engine import TINY

    hw = spec_from_dict(TINY)
    problem = LoopProblem.gemm(61, 32, 17)  # prime M and N: divisor tiles cannot fill a 4x4 array
    plain = search(problem, hw.hierarchy(), "latency", 10)
    padded = map_problem(problem, hw, "latency", 10)
    assert padded.cost.latency_cycles <= plain.cost.latency_cycles
    assert padded.nest.extents != problem.extents  # here padding wins
    validate_nest(padded.nest, problem, hw.hierarchy())
    real = problem.compulsory_bytes()
    dram = hw.hierarchy().levels[-1].name
    for t in problem.tensors:
        assert padded.cost.reads_bytes[dram][t.name] + padded.cost.writes_bytes[dram][t.name] >= real[t.name]
    assert padded.cost.macs >= problem.points


def test_a_nest_smaller_than_the_problem_is_refused():
    problem = LoopProblem.gemm(8, 8, 8)
    hierarchy = Hierarchy("h", (StorageLevel("buf", 10 ** 6), StorageLevel("dram", None, bandwidth_bytes_per_cycle=1.0)),
                          1e9)
    from accelsim.tiling import LevelLoops, LoopNest

    nest = LoopNest("gemm", {"m": 4, "k": 8, "n": 8}, (LevelLoops("dram", (("m", 4), ("k", 8), ("n", 8))),
                                                      LevelLoops("buf", ())))
    with pytest.raises(AccelsimError, match="extent 4 of rank m is below the problem's 8"):
        validate_nest(nest, problem, hierarchy)
