"""Exact tiling search: depth-first branch and bound over the mapping space of ``space.py``.

Why branch and bound and not CP-SAT: the costs are products of divisor choices (reuse is a
product of loop factors, a level's traffic a product over ranks), which CP-SAT only handles
through chains of multiplication constraints; walking the divisor lattice level by level from
DRAM inwards instead fixes one boundary's traffic at every step, so a partial mapping has a
sound lower bound and whole subtrees are dropped at once.

The walk: at storage level ``j`` (outermost first) choose the spatial unrolling below it, the
child level's tile and the loop order of the rest; that fixes the accesses of the boundary
between ``j`` and its child exactly (the formulas of ``accelsim.engines.loopnest``). The bound
of a partial mapping takes the known accesses, the compulsory bytes every level still to be
chosen must move, and the compute cycles the MACs below still need at full use. Every bound
is <= the cost of every completion, so the search proves its optimum when it finishes; on a
time-out it returns the best mapping found and the gap to the smallest bound still open.
Children are visited best bound first, so a good mapping is found early.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from accelsim.engines.loopnest import NestCost, evaluate, trailing_run
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.tiling import (
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    StorageLevel,
    capacity_groups,
    tensor_roles,
)
from mappers.tiling.kids import (
    OutOfTime,
    _fits,
    _vectors,
    build,
    order_of,
    permutations,
)
from mappers.tiling.space import divisors, order_signature

OBJECTIVES: tuple[str, ...] = ("dram", "latency", "energy", "edp")


def objective_key(objective: str, dram: float, latency: float, energy: float) -> tuple[float, ...]:
    """The objective first, then tie-breakers (so equal-DRAM mappings are ranked by latency)."""
    if objective == "dram":
        return (dram, latency, energy)
    if objective == "latency":
        return (latency, energy, dram)
    if objective == "energy":
        return (energy, latency, dram)
    if objective == "edp":
        return (energy * latency, latency, dram)
    raise AccelsimError(f"unknown objective {objective!r}", field="objective", allowed=OBJECTIVES)


@cache
def wave_factor(grid: int, size: int) -> float:
    """``min ceil(D / size) / D`` over the divisors ``D`` of ``grid``.

    A level whose ``size`` instances run a grid in waves splits its tile into ``D`` pieces, a
    divisor of the product of the grid ranks' tiles; its compute is at least
    ``tile points * ceil(D / size) / (D * MACs per instance)``, so this factor bounds it for
    every split still open.
    """
    return min(-(-d // size) / d for d in divisors(grid))


@dataclass(frozen=True)
class SearchResult:
    nest: LoopNest
    cost: NestCost
    objective: str
    status: str  # "optimal" (proved) or "time_limit" (best found, with gap)
    gap: float  # (best - bound) / best on the objective
    bound: float  # proved lower bound on the objective
    solve_s: float
    nodes: int

    @property
    def value(self) -> float:
        return objective_key(self.objective, self.cost.dram_bytes, self.cost.latency_cycles, self.cost.energy_pj)[0]


class _Fit:
    """Capacity check of a tile at one level (shared capacity or per-operand buffers)."""

    def __init__(self, level: StorageLevel, problem: LoopProblem) -> None:
        self.copies = 2 if level.double_buffered else 1
        self.tensors = problem.tensors
        self.shared = level.capacity_bytes
        self.per = None if level.capacity_by_tensor is None else capacity_groups(level, problem)

    def __call__(self, tile: dict[str, int]) -> bool:
        need = {t.name: t.footprint(tile) * t.dtype_bytes * self.copies for t in self.tensors}
        if self.per is not None:
            return all(sum(need[n] for n in names) <= cap for cap, names in self.per)
        return self.shared is None or sum(need.values()) <= self.shared


def search(problem: LoopProblem, hierarchy: Hierarchy, objective: str = "latency",
           time_limit_s: float = 10.0, tie_break: bool = True) -> SearchResult:
    """The best LoopNest for ``objective`` (proved optimal unless the time limit stops the search).

    ``tie_break``: among mappings equal on the objective, also minimise the tie-breakers
    (``objective_key``); without it the first optimum found is kept, which is much faster when
    many mappings tie (a memory-bound GEMM: every mapping that moves only compulsory bytes).
    """
    objective_key(objective, 0, 0, 0)
    if not time_limit_s > 0:
        raise AccelsimError(f"must be positive, got {time_limit_s}", field="time_limit_s")
    levels = hierarchy.levels
    depth = len(levels)
    tensors = problem.tensors
    ones = {r: 1 for r in problem.extents}
    fits = [_Fit(lv, problem) for lv in levels]
    if not fits[-1](dict(problem.extents)):
        raise InfeasibleError(f"the whole problem ({problem.compulsory_bytes()} bytes) does not fit the outermost "
                              f"level {levels[-1].name} ({levels[-1].capacity_bytes} bytes)",
                              field=f"level {levels[-1].name}")
    for lv, fit in zip(levels[:-1], fits[:-1]):
        if not fit(ones):
            raise InfeasibleError(f"one element of each tensor ({fit.copies}x buffered) does not fit level {lv.name}",
                                  field=f"level {lv.name}")
    peak_below = [math.prod(f.size for lv in levels[:i + 1] for f in lv.fanouts) for i in range(depth)]
    waves_at = [next((f for f in lv.fanouts if f.waves), None) for lv in levels]
    comp = {t.name: problem.elements(t) * t.dtype_bytes for t in tensors}
    floor_energy = [0.0] * (depth + 1)  # floor_energy[i+1]: compulsory energy of levels 0..i (parent side)
    roles = tensor_roles(problem)
    for i, lv in enumerate(levels):
        e = sum(comp[t.name] * lv.energy_pj_per_byte(roles[t.name])[1 if t.is_output else 0] for t in tensors)
        floor_energy[i + 1] = floor_energy[i] + e
    mac_energy = problem.points * hierarchy.mac_pj
    start = time.perf_counter()
    deadline = start + time_limit_s
    best: list = [None, None]  # key, nest
    open_bound = [math.inf]
    nodes = [0]
    stopped = [False]

    ranks = list(problem.extents)
    perms = permutations(len(ranks))
    # One-level look-ahead (see ``grid_fill_cycles``) where a grid level feeds a level with a bandwidth.
    look = {c: waves_at[c] for c in range(1, depth) if waves_at[c] is not None and len(levels[c].fanouts) == 1
            and levels[c - 1].bandwidth_bytes_per_cycle is not None}
    grand_tiles: dict[tuple, tuple] = {}
    built: dict[tuple, tuple] = {}  # children depend only on (level, tile, runs from above, output copies)

    def grid_fill_cycles(c: int, tc: np.ndarray, runs: np.ndarray, instances: int, prefix: int) -> float:
        """Lower bound on the latency below the grid level ``c`` whose tile is ``tc``.

        For every grandchild tile ``T_g`` (divides ``tc``, fits level ``c-1``): the grid level
        splits the ranks its cores take into ``D = prod(tc / T_g)`` pieces run in waves, and its
        temporal loops run only the other ranks (``space.py``). So its compute is at least
        ``prefix * prod(tc / T_g, other ranks) * ceil(D / size) * ceil(points(T_g) / MACs below)``;
        and for a tensor ``t`` the reuse across level ``c``'s loops is at most the product of the
        other ranks' factors, so its fills into level ``c-1`` are at least
        ``|t| / run * prod(E_r / T_g[r], split ranks not in t) * prod(E_r / tc[r], other ranks not in t)``,
        each read out once more, over ``instances * min(D, size)`` instances. The minimum over
        ``T_g`` of the larger of the two bounds the latency of every completion.
        """
        fo = look[c]
        key = (c, tuple(int(x) for x in tc))
        if key not in grand_tiles:  # everything that depends on the tile only, once per tile
            cand = _vectors(tuple((r, int(x)) for r, x in zip(ranks, tc)))
            cand = cand[_fits(cand, problem, levels[c - 1], fits[c - 1].copies)]
            allowed = np.array([fo.allowed_ranks is None or r in fo.allowed_ranks for r in ranks])
            pieces = tc[None, :] // cand
            grid = np.where(allowed[None, :], pieces, 1).prod(axis=1)
            other = np.where(allowed[None, :], 1, pieces).prod(axis=1)
            steps = other * -(-grid // fo.size) * -(-cand.prod(axis=1) // peak_below[c - 1])
            terms = []
            for t in tensors:
                if t.windows:  # no bound derived for a window's fills: 0 keeps the bound sound
                    terms.append(np.zeros(len(cand)))
                    continue
                coef = float(problem.elements(t) * t.dtype_bytes)
                split = []
                for x, r in enumerate(ranks):
                    if r in t.ranks:
                        continue
                    if allowed[x]:
                        coef *= problem.extents[r]
                        split.append(x)
                    else:
                        coef *= problem.extents[r] / float(tc[x])
                terms.append(coef / (cand[:, split].prod(axis=1) if split else np.ones(len(cand))))
            share = 2.0 / (levels[c - 1].bandwidth_bytes_per_cycle * np.minimum(grid, fo.size))
            grand_tiles[key] = (steps, terms, share)
        steps, terms, share = grand_tiles[key]
        if len(steps) == 0:
            return math.inf
        compute = prefix * steps
        total = sum(term / float(run) for term, run in zip(terms, runs))
        fills = total * share / instances
        return float(np.maximum(compute, fills).min())

    def expand(j: int, tile_j: dict[str, int], chosen: list[LevelLoops], above: list[tuple[str, int]],
               pend: tuple[int, int], active: int, prefix: int, energy: float, t_max: float, dram: float,
               copies: int = 1, pend_pj: float = 0.0) -> None:
        lv = levels[j]
        child = levels[j - 1] if j > 0 else None
        above_runs = tuple(trailing_run(above, t) for t in tensors)
        if time.perf_counter() > deadline:
            stopped[0] = True
            return  # the caller records this node's bound as open
        memo = (j, tuple(tile_j.values()), above_runs, copies)
        if memo not in built:
            try:
                built[memo] = build(problem, lv, child, tile_j, above_runs, fits[j - 1].copies if j > 0 else 1,
                                    perms, copies, deadline)
            except OutOfTime:
                stopped[0] = True
                return  # the caller records this node's bound as open
        options, kids = built[memo]
        if kids is None:
            return
        reads = pend[0] + kids.pr
        writes = pend[1] + kids.pw
        t_j = np.zeros(len(reads)) if lv.bandwidth_bytes_per_cycle is None else (reads + writes) / (lv.bandwidth_bytes_per_cycle * active)
        energy2 = energy + pend_pj + kids.pe  # pend_pj: this level's child-side accesses, costed by the parent
        active2 = active * kids.physical
        prefix2 = prefix * kids.temporal * kids.waves
        tmax2 = np.maximum(t_max, t_j)
        dram2 = reads + writes if j == depth - 1 else np.full(len(reads), dram)
        if child is not None:
            # Every element filled into the child is read out of it at least once, and every
            # partial sum it sends up was written into it: its accesses are at least twice these.
            t_c = np.zeros(len(reads)) if child.bandwidth_bytes_per_cycle is None else (
                2 * (kids.cr + kids.cw) / (child.bandwidth_bytes_per_cycle * active2))
            compute_lb = prefix2 * -(-kids.tc.prod(axis=1) // peak_below[j - 1])
            fo = waves_at[j - 1]
            if fo is not None:  # the child's grid runs in whole waves: see wave_factor
                cols = [x for x, r in enumerate(ranks) if fo.allowed_ranks is None or r in fo.allowed_ranks]
                grid = kids.tc[:, cols].prod(axis=1)
                factor = np.array([wave_factor(int(a), fo.size) for a in grid])
                per_wave = peak_below[j - 1] // fo.size
                compute_lb = np.maximum(compute_lb, prefix2 * kids.tc.prod(axis=1) * factor / per_wave)
            e_lb = energy2 + kids.ce + floor_energy[j] + mac_energy
            lat_lb = np.maximum(np.maximum(tmax2, t_c), compute_lb)
        else:
            e_lb = energy2 + mac_energy
            lat_lb = np.maximum(tmax2, prefix2.astype(np.float64))
        keys = objective_key(objective, dram2, lat_lb, e_lb)
        if not tie_break:
            keys = keys[:1]
        order = np.lexsort(tuple(reversed(keys)))
        seen: set = set()
        for i in order:
            lb = tuple(float(k[i]) for k in keys)
            if best[0] is not None and lb >= best[0]:
                return
            loop_order = order_of(kids, i, perms, ranks)
            tc = {r: int(kids.tc[i, x]) for x, r in enumerate(ranks)}
            sig = (int(kids.option[i]), tuple(tc.values()), order_signature(loop_order, tensors))
            if sig in seen:
                continue
            seen.add(sig)
            nodes[0] += 1
            if time.perf_counter() > deadline or stopped[0]:
                stopped[0] = True
                open_bound[0] = min(open_bound[0], lb[0])
                return
            if j - 1 in look:
                ahead = grid_fill_cycles(j - 1, kids.tc[i], kids.runs[i], int(active2[i]), int(prefix2[i]))
                if ahead > lat_lb[i]:
                    tighter = objective_key(objective, float(dram2[i]), ahead, float(e_lb[i]))
                    lb = tuple(float(x) for x in (tighter if tie_break else tighter[:1]))
                    if best[0] is not None and lb >= best[0]:
                        continue
            spatial = dict(options[int(kids.option[i])][0])
            for fo in lv.fanouts:
                if fo.waves:
                    share = {r: int(kids.wave[i, x]) for x, r in enumerate(ranks) if kids.wave[i, x] > 1}
                    if share:
                        spatial[fo.name] = share
            loops = LevelLoops(lv.name, loop_order, spatial)
            if j == 0:
                best[0], best[1] = lb, LoopNest(problem.name, dict(problem.extents), (*chosen, loops))
            else:
                expand(j - 1, tc, [*chosen, loops], [*above, *loop_order], (int(kids.cr[i]), int(kids.cw[i])),
                       int(active2[i]), int(prefix2[i]), float(energy2[i]), float(tmax2[i]), float(dram2[i]),
                       copies * int(kids.spread_out[i]), float(kids.ce[i]))
                if stopped[0]:  # this child's subtree is not finished: its bound stays open
                    open_bound[0] = min(open_bound[0], lb[0])
                    return

    # Seed: every loop at the outermost level, one element per inner level. It is in the space
    # and always fits (checked above), so a time-out never leaves the search without a mapping.
    # A grid (``waves``) fanout at that level takes its ranks spatially, as the space requires.
    grid = next((f for f in levels[-1].fanouts if f.waves), None)
    on_grid = {r: e for r, e in problem.extents.items() if e > 1 and grid is not None
               and (grid.allowed_ranks is None or r in grid.allowed_ranks)}
    seed = LoopNest(problem.name, dict(problem.extents),
                    (LevelLoops(levels[-1].name, tuple((r, e) for r, e in problem.extents.items()
                                                       if e > 1 and r not in on_grid),
                                {grid.name: on_grid} if on_grid else {}),
                     *(LevelLoops(lv.name) for lv in reversed(levels[:-1]))))
    c0 = evaluate(seed, problem, hierarchy)
    key0 = objective_key(objective, c0.dram_bytes, c0.latency_cycles, c0.energy_pj)
    best[0], best[1] = (key0 if tie_break else key0[:1]), seed
    expand(depth - 1, dict(problem.extents), [], [], (0, 0), 1, 1, 0.0, 0.0, 0.0)
    solve_s = time.perf_counter() - start
    if best[1] is None:
        raise InfeasibleError("no mapping fits the hierarchy within the time limit"
                              if stopped[0] else "no mapping fits the hierarchy", field="hierarchy")
    cost = evaluate(best[1], problem, hierarchy)
    value = objective_key(objective, cost.dram_bytes, cost.latency_cycles, cost.energy_pj)[0]
    if stopped[0] and open_bound[0] == math.inf:  # stopped before the root's children were bounded
        comp_total = sum(comp.values())
        dram_bw = levels[-1].bandwidth_bytes_per_cycle
        root_latency = max(problem.points / peak_below[-1], 0.0 if dram_bw is None else comp_total / dram_bw)
        open_bound[0] = objective_key(objective, comp_total, root_latency, floor_energy[depth] + mac_energy)[0]
    bound = value if not stopped[0] else min(value, open_bound[0])
    gap = 0.0 if value == 0 else max(0.0, (value - bound) / value)
    return SearchResult(best[1], cost, objective, "time_limit" if stopped[0] else "optimal", gap, bound, solve_s,
                        nodes[0])
