"""Convolutions through their own ranks: the engine's counts against the element-by-element
replay, the search against exhaustive enumeration, compulsory traffic, and a 1x1 convolution
against the GEMM it is."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from accelsim.engines.loopnest import evaluate
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    StorageLevel,
    validate_nest,
)
from mappers.tiling import search
from mappers.tiling.hardware import systolic_hierarchy
from mappers.tiling.search import OBJECTIVES, objective_key
from tests.tiling_bruteforce import assert_search_matches_brute_force, draw_nest
from tests.tiling_replay import replay

CONV_OUTPUT_RANKS = frozenset("nkpq")


def _touched_inputs(n, c, p, q, r, s, stride, dilation, pad=0) -> int:
    """Input elements some window touches, by listing them (independent of tiling_window)."""
    h, w = ((e - 1) * stride + (f - 1) * dilation + 1 - 2 * pad for e, f in ((p, r), (q, s)))
    rows = {i * stride + j * dilation - pad for i in range(p) for j in range(r)} & set(range(h))
    cols = {i * stride + j * dilation - pad for i in range(q) for j in range(s)} & set(range(w))
    return n * c * len(rows) * len(cols)


@pytest.mark.parametrize("shape", [(1, 2, 3, 5, 4, 3, 2, 1, 1, 0), (2, 1, 2, 4, 3, 3, 3, 2, 1, 0),
                                   (1, 3, 1, 3, 3, 1, 1, 2, 1, 0), (1, 1, 2, 4, 2, 2, 3, 1, 2, 0),
                                   (1, 1, 1, 3, 3, 3, 2, 3, 2, 0), (1, 2, 3, 5, 4, 3, 3, 1, 1, 1),
                                   (1, 1, 2, 4, 5, 3, 3, 2, 1, 1), (1, 1, 1, 6, 6, 5, 5, 1, 1, 2)])
def test_compulsory_input_is_what_the_windows_touch(shape):
    n, k, c, p, q, r, s, stride, dilation, pad = shape
    problem = LoopProblem.conv(n, k, c, p, q, r, s, stride, dilation, dtype_bytes=2, pad=pad)
    assert problem.compulsory_bytes() == {"I": 2 * _touched_inputs(n, c, p, q, r, s, stride, dilation, pad),
                                          "W": 2 * k * c * r * s, "O": 2 * n * k * p * q}


def _hierarchy(depth: int, cores: int, rows: int, allowed=None) -> Hierarchy:
    names = ["pe", "buf", "dram"][-depth:] if depth == 3 else ["pe", "dram"]
    levels = []
    for j, name in enumerate(names):
        fos: tuple = ()
        if j == 1 and depth == 3:
            fos = (Fanout("rows", rows, allowed_ranks=allowed), Fanout("cols", 2, allowed_ranks=allowed))
        if j == depth - 1 and cores > 1:
            fos = (Fanout("cores", cores, waves=True, allowed_ranks=CONV_OUTPUT_RANKS),)
        levels.append(StorageLevel(name, None, bandwidth_bytes_per_cycle=None if j == 0 else 2.0 * (depth - j),
                                   read_pj_per_byte=1.0 + j, write_pj_per_byte=2.0 + j, fanouts=fos))
    return Hierarchy("h", tuple(levels), 1e9, 0.5)


@st.composite
def conv_nests(draw):
    stride, dilation = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 1, 2]))
    try:
        problem = LoopProblem.conv(draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 2])),
                                   draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2, 3, 4])),
                                   draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2, 3])),
                                   draw(st.sampled_from([1, 2])), stride, dilation,
                                   dtype_bytes=draw(st.sampled_from([1, 2])), pad=draw(st.sampled_from([0, 0, 1, 2])))
    except AccelsimError:
        assume(False)  # the padding leaves no input
    assume(problem.points <= 96)
    hierarchy = _hierarchy(3, draw(st.sampled_from([1, 2])), 2)
    nest = draw_nest(draw, problem, hierarchy)
    return problem, hierarchy, nest


def _check_against_replay(problem, hierarchy, nest):
    validate_nest(nest, problem, hierarchy)
    cost = evaluate(nest, problem, hierarchy)
    reads, writes, mac_reads = replay(nest, problem, hierarchy)
    assert cost.reads_bytes == reads
    assert cost.writes_bytes == writes
    assert cost.mac_reads == mac_reads
    # a buffer that kept the windows' overlap would move no more; nothing moves less than compulsory
    halo_reads, halo_writes, _ = replay(nest, problem, hierarchy, halo=True)
    dram = hierarchy.levels[-1].name
    for t in problem.tensors:
        moved = cost.reads_bytes[dram][t.name] + cost.writes_bytes[dram][t.name]
        halo = halo_reads[dram][t.name] + halo_writes[dram][t.name]
        assert problem.compulsory_bytes()[t.name] <= halo <= moved
        for lv in hierarchy.levels:
            assert halo_writes[lv.name][t.name] <= cost.writes_bytes[lv.name][t.name]


@settings(max_examples=60, deadline=None)
@given(conv_nests())
def test_analytic_conv_counts_match_the_replay(case):
    _check_against_replay(*case)


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 0), (1, 1)])
@pytest.mark.parametrize("inner", [(("r", 2), ("c", 2)), (("c", 2), ("r", 2))])
@pytest.mark.parametrize("outer", list(itertools.permutations(("k", "p", "q"))))
def test_every_loop_order_matches_the_replay(outer, inner, stride, pad):
    problem = LoopProblem.conv(1, 2, 2, 4, 2 + pad, 2, 1, stride, pad=pad)  # ranks k c p q r (and s of 1)
    hierarchy = _hierarchy(3, 1, 2)
    factor = {"k": 2, "p": 2, "q": 2 + pad}
    nest = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", tuple((r, factor[r]) for r in outer)),
        LevelLoops("buf", inner, {"rows": {"p": 2}}),
        LevelLoops("pe", ())))
    _check_against_replay(problem, hierarchy, nest)


@pytest.mark.parametrize("pad", [0, 1])
def test_dram_is_compulsory_when_everything_fits(pad):
    problem = LoopProblem.conv(1, 2, 3, 4, 3, 3, 2, stride=2, pad=pad)
    hierarchy = _hierarchy(3, 1, 2)
    nest = LoopNest(problem.name, dict(problem.extents), (
        LevelLoops("dram", ()),
        LevelLoops("buf", (("q", 3), ("r", 3), ("c", 3), ("s", 2), ("p", 2)), {"rows": {"k": 2}, "cols": {"p": 2}}),
        LevelLoops("pe", ())))
    cost = evaluate(nest, problem, hierarchy)
    dram = hierarchy.levels[-1].name
    per_tensor = {t: cost.reads_bytes[dram][t] + cost.writes_bytes[dram][t] for t in cost.reads_bytes[dram]}
    assert per_tensor == problem.compulsory_bytes()


@st.composite
def conv_instances(draw):
    try:
        problem = LoopProblem.conv(1, draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])),
                                   draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2])),
                                   draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2])),
                                   draw(st.sampled_from([1, 2])), dtype_bytes=draw(st.sampled_from([1, 2])),
                                   pad=draw(st.sampled_from([0, 0, 1])))
    except AccelsimError:
        assume(False)
    assume(len(problem.extents) <= 4)
    depth = draw(st.sampled_from([2, 3]))
    allowed = draw(st.sampled_from([None, frozenset("kc")]))
    levels = []
    for j in range(depth):
        outer = j == depth - 1
        fos: tuple = ()
        if j == 1 and depth == 3:
            fos = (Fanout("rows", draw(st.sampled_from([2, 3])), allowed_ranks=allowed),)
        if outer and depth == 3 and draw(st.booleans()):
            fos = (Fanout("cores", 2, waves=True, allowed_ranks=CONV_OUTPUT_RANKS),)
        per_operand = not outer and draw(st.booleans())
        cap = None if outer else draw(st.sampled_from([4, 8, 16, 64]))
        levels.append(StorageLevel(
            f"L{j}", None if per_operand else cap, {"A+C": cap, "B": cap // 2} if per_operand else None,
            float(draw(st.sampled_from([1, 2, 8]))), float(draw(st.integers(0, 4))), float(draw(st.integers(0, 4))),
            double_buffered=not outer and draw(st.booleans()), fanouts=fos))
    return problem, Hierarchy("h", tuple(levels), 1e9, float(draw(st.integers(0, 2)))), draw(st.sampled_from(OBJECTIVES))


@settings(max_examples=30, deadline=None)
@given(conv_instances())
def test_search_proves_the_exhaustive_optimum_on_convolutions(case):
    c = assert_search_matches_brute_force(*case)
    if c is not None:
        assert c.dram_bytes >= sum(case[0].compulsory_bytes().values())


def _renamed(nest: LoopNest, names: dict[str, str]) -> LoopNest:
    return LoopNest(nest.einsum, {names[r]: e for r, e in nest.extents.items()}, tuple(
        LevelLoops(lv.level, tuple((names[r], f) for r, f in lv.temporal),
                   {fo: {names[r]: f for r, f in fs.items()} for fo, fs in lv.spatial.items()}) for lv in nest.levels))


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("shape", [(64, 48, 32), (96, 16, 40), (8, 64, 24)])
def test_a_1x1_convolution_is_its_gemm(shape, objective):
    m, k, n = shape
    hw = load_hardware("scalesim-scale")
    hierarchy = systolic_hierarchy(hw)
    gemm = LoopProblem.gemm(m, k, n, dtype_bytes=hw.word_bytes, name="x")
    conv = LoopProblem.conv(1, n, k, m, 1, 1, 1, dtype_bytes=hw.word_bytes, name="x", names=("A", "B", "C"))
    a, b = search(gemm, hierarchy, objective, 30), search(conv, hierarchy, objective, 30)
    assert a.status == b.status == "optimal"
    ka = objective_key(objective, a.cost.dram_bytes, a.cost.latency_cycles, a.cost.energy_pj)
    kb = objective_key(objective, b.cost.dram_bytes, b.cost.latency_cycles, b.cost.energy_pj)
    assert ka == kb
    # the GEMM's own nest, renamed, costs exactly the same as a convolution
    same = evaluate(_renamed(a.nest, {"m": "p", "k": "c", "n": "k"}), conv, hierarchy)
    assert (same.reads_bytes, same.writes_bytes, same.latency_cycles, same.energy_pj) == (
        a.cost.reads_bytes, a.cost.writes_bytes, a.cost.latency_cycles, a.cost.energy_pj)


def test_bad_convolutions_are_refused():
    with pytest.raises(AccelsimError, match="positive integer") as info:
        LoopProblem.conv(1, 2, 2, 3, 3, 3, 3, stride=0)
    assert info.value.field == "conv.stride"
    from accelsim.tiling import TensorAccess
    from accelsim.tiling_window import Window

    with pytest.raises(AccelsimError, match="sliding window"):
        LoopProblem("x", {"p": 2, "r": 2}, (TensorAccess("O", frozenset("pr"), 1, True, (Window("p", "r"),)),))


@pytest.mark.parametrize("h,w,r,stride,padding", [(8, 7, 3, 1, 1), (8, 8, 3, 2, 1), (9, 6, 1, 2, 0), (7, 7, 5, 2, 2)])
def test_a_conv2d_einsum_keeps_its_input_size(h, w, r, stride, padding):
    from accelsim.ir import conv2d

    e = conv2d("c1", ifmap_h=h, ifmap_w=w, channels=3, filters=4, filter_h=r, filter_w=r, stride=stride,
               padding=padding, dtype_bytes=2)
    problem = LoopProblem.from_conv_einsum(e)
    p, q = e.extents["p"], e.extents["q"]
    rows = {i * stride + j - padding for i in range(p) for j in range(r)} & set(range(h))
    cols = {i * stride + j - padding for i in range(q) for j in range(r)} & set(range(w))
    assert problem.compulsory_bytes()[e.inputs[0].tensor.name] == 2 * 3 * len(rows) * len(cols)
    if stride == 1:  # every input element is in some window
        assert problem.compulsory_bytes()[e.inputs[0].tensor.name] == 2 * e.inputs[0].tensor.elements
    assert problem.points == e.points


def test_cores_split_a_convolution_by_its_output_ranks():
    from accelsim.hardware import spec_from_dict
    from mappers.tiling import map_problem
    from mappers.tiling.hardware import hierarchy_for
    from tests.test_multicore_engine import TINY

    hw = spec_from_dict(TINY)
    conv = LoopProblem.conv(1, 8, 4, 6, 6, 3, 3, pad=1, dtype_bytes=2)
    hierarchy = hierarchy_for(hw, conv)
    cores = [f for lv in hierarchy.levels for f in lv.fanouts if f.waves]
    assert cores and all(f.allowed_ranks == frozenset("kpq") for f in cores)
    r = map_problem(conv, hw, "latency", 10, pad=False, tie_break=False)
    assert r.status == "optimal"
    validate_nest(r.nest, conv, hierarchy)
    # no core split of the reduction (c, r, s): that would need a cross-core sum the model does not count
    split = {x for lv in r.nest.levels for name, fs in lv.spatial.items() for x in fs
             if name in {f.name for f in cores}}
    assert split and split <= {"k", "p", "q"}
    # a 1x1 convolution on the same cores is its GEMM
    gemm = LoopProblem.gemm(36, 8, 16, dtype_bytes=2)
    one = LoopProblem.conv(1, 16, 8, 36, 1, 1, 1, dtype_bytes=2, names=("A", "B", "C"))
    a, b = map_problem(gemm, hw, "latency", 10, pad=False), map_problem(one, hw, "latency", 10, pad=False)
    assert (a.cost.latency_cycles, a.cost.dram_bytes, a.cost.energy_pj) == (
        b.cost.latency_cycles, b.cost.dram_bytes, b.cost.energy_pj)
