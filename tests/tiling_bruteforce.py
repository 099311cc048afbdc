"""Plain exhaustive enumeration of the tiling mapping space, for tests on small instances.

Independent of ``mappers/tiling/space.py``: it lists every ordered factorisation of every rank
over every (level, temporal or fanout) slot and every permutation of every level's loops, keeps
those the space's rules admit, and costs each with the engine.
"""
from __future__ import annotations

import itertools
import math

from accelsim.engines.loopnest import evaluate
from accelsim.errors import AccelsimError
from accelsim.tiling import (
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    check_capacities,
)
from mappers.tiling.search import objective_key


def factorisations(n: int, slots: int):
    if slots == 1:
        yield (n,)
        return
    for d in range(1, n + 1):
        if n % d == 0:
            for rest in factorisations(n // d, slots - 1):
                yield (d, *rest)


def enumerate_nests(problem: LoopProblem, hierarchy: Hierarchy):
    levels = list(reversed(hierarchy.levels))  # outermost first
    slots = [(j, None) for j in range(len(levels))] + [(j, fo) for j, lv in enumerate(levels) for fo in lv.fanouts]
    ranks = list(problem.extents)
    for combo in itertools.product(*(list(factorisations(problem.extents[r], len(slots))) for r in ranks)):
        ok = True
        temporal = [{} for _ in levels]
        spatial = [{} for _ in levels]
        for (j, fo), factors in zip(slots, zip(*combo)):
            assign = {r: f for r, f in zip(ranks, factors) if f > 1}
            if fo is None:
                temporal[j] = assign
                continue
            if fo.allowed_ranks is not None and any(r not in fo.allowed_ranks for r in assign):
                ok = False
            if not fo.waves and (len(assign) > 1 or math.prod(assign.values()) > fo.size):
                ok = False
            if assign:
                spatial[j][fo.name] = assign
        for j, lv in enumerate(levels):
            for fo in lv.fanouts:
                if fo.waves and any(r in temporal[j] for r in (fo.allowed_ranks or ranks)):
                    ok = False
        if not ok:
            continue
        for orders in itertools.product(*(itertools.permutations(sorted(t.items())) for t in temporal)):
            yield LoopNest(problem.name, dict(problem.extents),
                           tuple(LevelLoops(lv.name, tuple(o), s) for lv, o, s in zip(levels, orders, spatial)))


def best_nest(problem: LoopProblem, hierarchy: Hierarchy, cost):
    """(key, nest, cost) of the nest with the smallest ``key`` among every nest that fits, where
    ``cost(nest) -> (key, cost)``; None when nothing fits."""
    best = None
    for nest in enumerate_nests(problem, hierarchy):
        try:
            check_capacities(nest, problem, hierarchy)
        except AccelsimError:
            continue
        key, c = cost(nest)
        if best is None or key < best[0]:
            best = (key, nest, c)
    return best


def brute_force(problem: LoopProblem, hierarchy: Hierarchy, objective: str):
    def cost(nest):
        c = evaluate(nest, problem, hierarchy)
        return objective_key(objective, c.dram_bytes, c.latency_cycles, c.energy_pj), c

    return best_nest(problem, hierarchy, cost)


def assert_search_matches_brute_force(problem: LoopProblem, hierarchy: Hierarchy, objective: str,
                                      *, validate: bool = True):
    """The search's claim checked against plain enumeration: infeasible exactly when nothing fits,
    otherwise proven optimal with the enumerated optimum's objective. Returns the found nest's
    cost (None when infeasible) for further checks."""
    import pytest

    from accelsim.errors import InfeasibleError
    from accelsim.tiling import validate_nest
    from mappers.tiling import search

    brute = brute_force(problem, hierarchy, objective)
    if brute is None:
        with pytest.raises(InfeasibleError):
            search(problem, hierarchy, objective, 30)
        return None
    r = search(problem, hierarchy, objective, 30)
    assert r.status == "optimal" and r.gap == 0
    if validate:
        validate_nest(r.nest, problem, hierarchy)
    c = evaluate(r.nest, problem, hierarchy)
    key = objective_key(objective, c.dram_bytes, c.latency_cycles, c.energy_pj)
    assert all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(key, brute[0])), (key, brute[0])
    return c


def draw_nest(draw, problem: LoopProblem, hierarchy: Hierarchy) -> LoopNest:
    """A random nest of the hierarchy for hypothesis (``draw`` of an ``st.composite``): every rank's
    extent split over the levels' temporal loops and the fanouts that may unroll it, random orders."""
    import hypothesis.strategies as st

    levels = list(reversed(hierarchy.levels))  # outermost first
    temporal = [{} for _ in levels]
    spatial = [{} for _ in levels]
    for r, e in problem.extents.items():
        left = e
        slots = [(j, None) for j in range(len(levels))] + [(j, f) for j, lv in enumerate(levels) for f in lv.fanouts]
        for j, fo in draw(st.permutations(slots)):
            if left == 1:
                break
            if fo is not None and fo.allowed_ranks is not None and r not in fo.allowed_ranks:
                continue
            choices = [d for d in range(1, left + 1) if left % d == 0 and (fo is None or fo.waves or d <= fo.size)]
            f = draw(st.sampled_from(choices))
            if fo is not None and not fo.waves and math.prod(spatial[j].get(fo.name, {}).values()) * f > fo.size:
                f = 1
            left //= f
            if fo is None:
                temporal[j][r] = temporal[j].get(r, 1) * f
            elif f > 1:
                spatial[j].setdefault(fo.name, {})[r] = f
        temporal[0][r] = temporal[0].get(r, 1) * left  # the rest at DRAM
    orders = [tuple(draw(st.permutations(sorted(t.items())))) for t in temporal]
    return LoopNest(problem.name, dict(problem.extents),
                    tuple(LevelLoops(lv.name, o, s) for lv, o, s in zip(levels, orders, spatial)))
