"""Loop-nest cost: accesses per memory level and per tensor, cycles and energy of a LoopNest.

This is the engine side of the tiling mapper: the mapper only chooses a ``LoopNest``
(``accelsim.tiling``); this module counts what it costs, so a saved mapping is replayed here
without the mapper.

The reuse model (Timeloop's for projection-only operands; Parashar et al., ISPASS 2019, and the
analytic model of Kwon et al., MAESTRO, MICRO 2019): a level keeps exactly one tile of each
tensor per instance. A child's tile of tensor ``t`` changes whenever a loop above it that
indexes ``t`` advances; a run of loops that do *not* index ``t`` at the innermost end of the
loops above (all levels' temporal loops concatenated, outermost first) leaves the tile in
place, which is reuse. So the elements a parent level ``j`` sends down for ``t`` are::

    base_j(t) = |t| * prod_{r not in t} (E_r / T_{j-1}[r]) / sigma_j[r] / run_j(t)

with ``T_{j-1}`` the child's tile, ``sigma_j`` the spatial factors of ``j``'s fanouts (a rank
that does not index ``t`` is multicast: one read serves every child that shares it) and
``run_j(t)`` the product of that innermost irrelevant run. For the output, ``base`` tiles of
partial sums go up (spatial reduction over ``sigma`` on the way); all but the first visit of
each element also come back down (``base - |C| * copies`` read-backs, ``copies`` the
instances of the parent that a spatial reduction above it gives their own partial sums). ``base >= |t|`` always, so DRAM
traffic is never below compulsory, and equals it when every tile fits (no reload).

A convolution's input (``TensorAccess.windows``, ``LoopProblem.conv``) is indexed by
``p * stride + r * dilation``: its tile is the sliding window's, and the same counting holds with
``|t| * prod(...)`` replaced by changes times footprint (``transfers``). When its tile changes the
whole window tile is fetched again: the overlap of consecutive windows is not kept (a
conservative model, ZigZag's basic one); the replay also checks a buffer that keeps it moves no more.

Time: ``compute_cycles`` is the product of all temporal factors times the waves of every
``waves`` fanout; each level with a bandwidth needs ``accesses / (bandwidth * active
instances)`` cycles; with double buffering these overlap, so latency is their maximum (a
per-level roofline, as Timeloop's and ZigZag's latency models without stalls). Energy: MACs times
``mac_pj`` plus every access times its level's energy per byte (per operand where the level
gives one: ``StorageLevel.energy_pj_per_byte``).
``tests/tiling_replay.py`` checks every count element by element on small shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from accelsim.tiling import (
    Hierarchy,
    LevelLoops,
    LoopNest,
    LoopProblem,
    TensorAccess,
    problem_for,
    tensor_roles,
    tiles,
)


@dataclass(frozen=True)
class NestCost:
    """What one loop nest costs. Byte maps are ``{level: {tensor: bytes}}``, summed over instances."""

    reads_bytes: dict[str, dict[str, int]]
    writes_bytes: dict[str, dict[str, int]]
    mac_reads: dict[str, int]  # elements the MACs take from the innermost level, per input tensor
    compute_cycles: int
    level_cycles: dict[str, float]
    latency_cycles: float
    energy_pj: float
    macs: int
    peak_macs_per_cycle: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dram_level(self) -> str:
        return list(self.reads_bytes)[-1]

    @property
    def dram_bytes(self) -> int:
        lv = self.dram_level
        return sum(self.reads_bytes[lv].values()) + sum(self.writes_bytes[lv].values())

    def level_bytes(self, level: str) -> int:
        return sum(self.reads_bytes[level].values()) + sum(self.writes_bytes[level].values())

    @property
    def utilization(self) -> float:
        return self.macs / (self.compute_cycles * self.peak_macs_per_cycle)


def trailing_run(loops: list[tuple[str, int]], t: TensorAccess) -> int:
    """Product of the innermost loops (factor > 1) that do not index ``t``: the tile stays put."""
    run = 1
    for rank, factor in reversed(loops):
        if factor == 1:
            continue
        if rank in t.ranks:
            break
        run *= factor
    return run


def sent_down(problem: LoopProblem, t: TensorAccess, child_tile: dict[str, int], spatial: dict[str, int],
              run: int) -> int:
    """``base_j(t)`` above, in elements (always an exact integer)."""
    return transfers(problem, t, child_tile, spatial, run)[0]


def transfers(problem: LoopProblem, t: TensorAccess, child_tile: dict[str, int], spatial: dict[str, int],
              run: int) -> tuple[int, int]:
    """(elements the parent sends, elements its children receive) for tensor ``t``.

    Written as ``steps * footprint``: the children's tiles change together ``steps`` times
    (summed over the parent's instances), ``steps = prod_r E_r / (T[r] * sigma[r]) / run``. At
    each change the parent sends the union of its children's tiles once (multicast), which is the
    footprint of the tile ``T * sigma`` over the ranks that index ``t``, and every child receives
    its own tile. For a projection operand this is ``base_j`` above. For a windowed input
    (a convolution) the whole window tile is fetched again at every change: the overlap of
    consecutive windows is not assumed kept (ZigZag's basic model does the same), so these counts
    are an upper bound on a buffer that keeps the halo.
    """
    steps, children = 1, 1
    union = {}
    for r, e in problem.extents.items():
        sig = spatial.get(r, 1)
        steps *= e // (child_tile[r] * sig)
        children *= sig
        union[r] = child_tile[r] * (sig if r in t.ranks else 1)
    assert steps % run == 0, (steps, run)
    steps //= run
    if not t.windows:
        return steps * t.footprint(union), steps * children * t.footprint(child_tile)
    # Every position of a tile on its grid is visited equally often, so the elements moved are
    # the visits times the mean over positions (a window in the padding touches fewer).
    count_u, sum_u = t.visits(union, problem.extents)
    count_c, sum_c = t.visits(child_tile, problem.extents)
    assert steps % count_u == 0 and (steps * children) % count_c == 0, (steps, count_u, count_c)
    return steps // count_u * sum_u, steps * children // count_c * sum_c


def spatial_by_rank(lv: LevelLoops) -> dict[str, int]:
    out: dict[str, int] = {}
    for factors in lv.spatial.values():
        for r, f in factors.items():
            out[r] = out.get(r, 1) * f
    return out


def evaluate(nest: LoopNest, problem: LoopProblem, hierarchy: Hierarchy) -> NestCost:
    """Count accesses, cycles and energy of ``nest`` (assumed valid: ``accelsim.tiling.validate_nest``).

    A nest over padded extents is costed as the padded problem: the padding is computed and
    moved like real data (a conservative view of partial tiles).
    """
    problem = problem_for(nest, problem)
    levels = hierarchy.levels
    loops = nest.inner_first()
    tile = tiles(nest, problem)
    reads = {lv.name: {t.name: 0 for t in problem.tensors} for lv in levels}
    writes = {lv.name: {t.name: 0 for t in problem.tensors} for lv in levels}
    mac_reads: dict[str, int] = {}
    ones = {r: 1 for r in problem.extents}
    for j, hw in enumerate(levels):
        above: list[tuple[str, int]] = [x for lv in reversed(loops[j:]) for x in lv.temporal]
        sigma = spatial_by_rank(loops[j])
        child = tile[j - 1] if j > 0 else ones
        for t in problem.tensors:
            base, received = transfers(problem, t, child, sigma, trailing_run(above, t))
            irr = math.prod(sigma.get(r, 1) for r in problem.extents if r not in t.ranks)
            b = t.dtype_bytes
            if not t.is_output:
                reads[hw.name][t.name] += base * b
                if j > 0:
                    writes[levels[j - 1].name][t.name] += received * b
                else:
                    mac_reads[t.name] = received
            else:
                # Each instance of the parent that holds a partial copy of the same outputs (a
                # spatial reduction above it) starts its copy at zero: those first visits need no read.
                copies = math.prod(spatial_by_rank(lv).get(r, 1) for lv in loops[j + 1:]
                                   for r in problem.extents if r not in t.ranks)
                back = base - problem.elements(t) * copies
                writes[hw.name][t.name] += base * b
                reads[hw.name][t.name] += back * b
                if j > 0:
                    reads[levels[j - 1].name][t.name] += base * irr * b
                    writes[levels[j - 1].name][t.name] += back * b
    temporal = math.prod(f for lv in loops for _, f in lv.temporal)
    waves = 1
    active = [1] * len(levels)  # physical instances of each level in use
    for j in range(len(levels) - 1, -1, -1):
        if j < len(levels) - 1:
            active[j] = active[j + 1] * _physical(loops[j + 1], levels[j + 1])
        for fo in levels[j].fanouts:
            used = math.prod(loops[j].spatial.get(fo.name, {}).values())
            if fo.waves:
                waves *= -(-used // fo.size)
    compute = temporal * waves
    level_cycles: dict[str, float] = {}
    for j, hw in enumerate(levels):
        if hw.bandwidth_bytes_per_cycle is not None:
            total = sum(reads[hw.name].values()) + sum(writes[hw.name].values())
            level_cycles[hw.name] = total / (hw.bandwidth_bytes_per_cycle * active[j])
    latency = max([float(compute), *level_cycles.values()])
    roles = tensor_roles(problem)
    energy = problem.points * hierarchy.mac_pj + sum(
        reads[hw.name][t.name] * hw.energy_pj_per_byte(roles[t.name])[0]
        + writes[hw.name][t.name] * hw.energy_pj_per_byte(roles[t.name])[1] for hw in levels for t in problem.tensors)
    return NestCost(reads, writes, mac_reads, compute, level_cycles, latency, energy, problem.points,
                    hierarchy.peak_macs_per_cycle, {"waves": waves, "active_instances": dict(
                        zip([lv.name for lv in levels], active))})


def _physical(lv: LevelLoops, hw) -> int:
    """Instances of the level below that ``lv``'s spatial loops keep busy at once."""
    n = 1
    for fo in hw.fanouts:
        used = math.prod(lv.spatial.get(fo.name, {}).values())
        n *= min(used, fo.size)
    return n
