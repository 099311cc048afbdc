"""Levels whose operands differ: a buffer shared by some operands (``capacity_by_tensor`` key
``A+C``) and per-operand energies (``energy_pj_per_byte_by_tensor``), as ZigZag's tpu_like needs.

The search must still prove the exhaustive optimum (``tests/tiling_bruteforce.py``), and the
engine's energy must move by exactly an operand's bytes times its energy change.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.loopnest import evaluate
from accelsim.errors import InfeasibleError
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    StorageLevel,
    check_capacities,
)
from mappers.tiling.search import OBJECTIVES
from tests.tiling_bruteforce import assert_search_matches_brute_force


@st.composite
def instances(draw):
    problem = LoopProblem.gemm(draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 3, 4])),
                               draw(st.sampled_from([2, 4])), dtype_bytes=draw(st.sampled_from([1, 2])))
    energy = st.tuples(st.integers(0, 40).map(float), st.integers(0, 40).map(float))
    levels = []
    for j in range(3):
        outer = j == 2
        cap = draw(st.sampled_from([4, 8, 16, 32]))
        groups = None if outer else draw(st.sampled_from([{"A+C": cap, "B": cap // 2}, {"A+B": cap, "C": cap},
                                                          {"A+B+C": cap}]))
        by_tensor = None if j == 0 else draw(st.dictionaries(st.sampled_from("ABC"), energy, min_size=1, max_size=3))
        levels.append(StorageLevel(
            f"L{j}", None, groups, None if j == 0 else float(draw(st.sampled_from([1, 4]))),
            float(draw(st.integers(0, 4))), float(draw(st.integers(0, 4))),
            fanouts=(Fanout("rows", draw(st.sampled_from([2, 4]))),) if j == 1 else (),
            energy_pj_per_byte_by_tensor=by_tensor))
    return problem, Hierarchy("h", tuple(levels), 1e9, 1.0), draw(st.sampled_from(("energy", "edp", *OBJECTIVES)))


@settings(max_examples=40, deadline=None)
@given(instances())
def test_search_proves_the_exhaustive_optimum_with_operand_levels(case):
    assert_search_matches_brute_force(*case, validate=False)


def _hierarchy(sram: StorageLevel) -> Hierarchy:
    return Hierarchy("h", (StorageLevel("pe", capacity_by_tensor={"A": 1, "B": 1, "C": 1}), sram,
                           StorageLevel("dram", None, None, 8.0, 80.0, 90.0)), 1e9, 0.5)


def test_shared_buffer_counts_its_operands_together():
    problem = LoopProblem.gemm(8, 8, 8, dtype_bytes=1)
    nest = LoopNest("gemm", dict(problem.extents), (LevelLoops("dram"), LevelLoops(
        "sram", (("m", 8), ("k", 8), ("n", 8))), LevelLoops("pe")))
    fits = StorageLevel("sram", capacity_by_tensor={"A+C": 128, "B": 64})  # A 64 + C 64 bytes, B 64
    check_capacities(nest, problem, _hierarchy(fits))
    with pytest.raises(InfeasibleError, match="A\\+C"):
        check_capacities(nest, problem, _hierarchy(replace(fits, capacity_by_tensor={"A+C": 127, "B": 64})))


def test_operand_energy_moves_energy_by_its_bytes_only():
    problem = LoopProblem.gemm(16, 8, 16, dtype_bytes=1)
    nest = LoopNest("gemm", dict(problem.extents), (LevelLoops("dram", (("n", 2),)), LevelLoops(
        "sram", (("m", 4), ("k", 8), ("n", 2)), {"rows": {"m": 4}, "cols": {"n": 4}}), LevelLoops("pe")))
    sram = StorageLevel("sram", read_pj_per_byte=2.0, write_pj_per_byte=3.0,
                        fanouts=(Fanout("rows", 4), Fanout("cols", 4)))
    base = evaluate(nest, problem, _hierarchy(sram))
    changed = evaluate(nest, problem, _hierarchy(replace(sram, energy_pj_per_byte_by_tensor={"B": (0.5, 7.0)})))
    expect = base.energy_pj + base.reads_bytes["sram"]["B"] * (0.5 - 2.0) + base.writes_bytes["sram"]["B"] * (7.0 - 3.0)
    assert base.reads_bytes["sram"]["B"] > 0 and base.writes_bytes["sram"]["B"] > 0
    assert math.isclose(changed.energy_pj, expect)
    assert changed.reads_bytes == base.reads_bytes and changed.latency_cycles == base.latency_cycles
