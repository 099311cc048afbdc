"""The loop-nest engine's analytic counts against an element-by-element replay, and its checks."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.loopnest import evaluate
from accelsim.errors import AccelsimError
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    StorageLevel,
    check_capacities,
    validate_nest,
)
from tests.tiling_bruteforce import draw_nest
from tests.tiling_replay import replay


def _hierarchy(depth: int, fanouts: list[tuple[str, int, bool]]) -> Hierarchy:
    """``depth`` levels (pe, [buf,] dram); rows/cols fan out below pe, cores below the level above it."""
    names = ["pe", "buf", "dram"] if depth == 3 else ["pe", "dram"]
    levels = []
    for j, n in enumerate(names):
        fos = tuple(Fanout(f"{n}_{name}", size, waves) for name, size, waves in fanouts if j == _home(name, depth))
        levels.append(StorageLevel(n, None, bandwidth_bytes_per_cycle=None if j == 0 else 2.0 * (depth - j),
                                   read_pj_per_byte=1.0 + j, write_pj_per_byte=2.0 + j, fanouts=fos))
    return Hierarchy("h", tuple(levels), 1e9, 0.5)


def _home(name: str, depth: int) -> int:
    return 0 if name in ("rows", "cols") else depth - 2


@st.composite
def nests(draw):
    ext = {"m": draw(st.sampled_from([1, 2, 3, 4])), "k": draw(st.sampled_from([1, 2, 4, 6])),
           "n": draw(st.sampled_from([1, 2, 4])), "batch": draw(st.sampled_from([1, 1, 2]))}
    problem = LoopProblem.gemm(ext["m"], ext["k"], ext["n"], ext["batch"], dtype_bytes=draw(st.sampled_from([1, 2])))
    depth = draw(st.sampled_from([2, 3]))
    fan = [("rows", 4, False), ("cols", 4, False)] + ([("cores", 2, True)] if depth == 3 else [])
    hierarchy = _hierarchy(depth, fan)
    nest = draw_nest(draw, problem, hierarchy)
    return problem, hierarchy, nest


@settings(max_examples=60, deadline=None)
@given(nests())
def test_analytic_counts_match_the_replay(case):
    problem, hierarchy, nest = case
    validate_nest(nest, problem, hierarchy)
    cost = evaluate(nest, problem, hierarchy)
    reads, writes, mac_reads = replay(nest, problem, hierarchy)
    assert cost.reads_bytes == reads
    assert cost.writes_bytes == writes
    assert cost.mac_reads == mac_reads
    # DRAM never below compulsory, per tensor
    dram = hierarchy.levels[-1].name
    for t in problem.tensors:
        moved = cost.reads_bytes[dram][t.name] + cost.writes_bytes[dram][t.name]
        assert moved >= problem.compulsory_bytes()[t.name]


RANKS = ("m", "k", "n")


@pytest.mark.parametrize("outer", list(itertools.permutations(RANKS)))
@pytest.mark.parametrize("inner", list(itertools.permutations(RANKS)))
def test_every_loop_order_matches_the_replay(outer, inner):
    problem = LoopProblem.gemm(4, 4, 4)
    hierarchy = _hierarchy(3, [("rows", 2, False), ("cols", 2, False)])
    nest = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", tuple((r, 2) for r in outer)),
        LevelLoops("buf", tuple((r, 1 if r == "m" else 2) for r in inner)),
        LevelLoops("pe", (), {"pe_rows": {"m": 2}})))
    validate_nest(nest, problem, hierarchy)
    cost = evaluate(nest, problem, hierarchy)
    reads, writes, _ = replay(nest, problem, hierarchy)
    assert (cost.reads_bytes, cost.writes_bytes) == (reads, writes)


def test_dram_is_compulsory_when_everything_fits():
    problem = LoopProblem.gemm(6, 4, 2, batch=2)
    hierarchy = _hierarchy(3, [("rows", 2, False), ("cols", 2, False)])
    nest = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", ()),
        LevelLoops("buf", (("n", 2), ("b", 2), ("k", 4), ("m", 3))),
        LevelLoops("pe", (), {"pe_rows": {"m": 2}})))
    cost = evaluate(nest, problem, hierarchy)
    dram = hierarchy.levels[-1].name
    per_tensor = {t: cost.reads_bytes[dram][t] + cost.writes_bytes[dram][t] for t in cost.reads_bytes[dram]}
    assert per_tensor == problem.compulsory_bytes()


def _two_level():
    problem = LoopProblem.gemm(4, 4, 4)
    hierarchy = Hierarchy("h", (StorageLevel("buf", 64, fanouts=(Fanout("rows", 2),)),
                                StorageLevel("dram", None, bandwidth_bytes_per_cycle=1.0)), 1e9)
    return problem, hierarchy


def test_a_tile_larger_than_its_level_names_the_level_and_sizes():
    problem, hierarchy = _two_level()
    nest = LoopNest(problem.name, dict(problem.extents), (LevelLoops("dram", ()),
                                                          LevelLoops("buf", (("m", 4), ("k", 4), ("n", 4)))))
    with pytest.raises(AccelsimError, match=r"level buf.*96 bytes.*holds 64") as info:
        check_capacities(nest, problem, hierarchy)
    assert info.value.field == "level buf"


def test_unknown_rank_and_oversized_unrolling_are_refused():
    problem, hierarchy = _two_level()
    bad_rank = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", (("m", 4), ("k", 4), ("q", 4))), LevelLoops("buf", ())))
    with pytest.raises(AccelsimError, match="unknown rank 'q'"):
        validate_nest(bad_rank, problem, hierarchy)
    too_wide = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", (("k", 4), ("n", 4))), LevelLoops("buf", (), {"rows": {"m": 4}})))
    with pytest.raises(AccelsimError, match="uses 4 instances but buf.rows has 2"):
        validate_nest(too_wide, problem, hierarchy)
    short = LoopNest(problem.name, dict(problem.extents), (LevelLoops("dram", (("m", 2), ("k", 4), ("n", 4))),
                                                           LevelLoops("buf", ())))
    with pytest.raises(AccelsimError, match="rank m multiply to 2, not its extent 4"):
        validate_nest(short, problem, hierarchy)


def test_nest_round_trips_through_a_dict():
    problem, hierarchy = _two_level()
    nest = LoopNest(problem.name, dict(problem.extents), (LevelLoops("dram", (("k", 4), ("n", 2))),
                                                          LevelLoops("buf", (("n", 2),), {"rows": {"m": 2}})))
    again = LoopNest.from_dict(problem.name, nest.to_dict())
    assert evaluate(again, problem, hierarchy).reads_bytes == evaluate(nest, problem, hierarchy).reads_bytes
    assert again.levels[0].temporal == nest.levels[0].temporal and again.levels[1].spatial == nest.levels[1].spatial
