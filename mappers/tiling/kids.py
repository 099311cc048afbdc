"""The children of one search node, costed all at once with numpy.

A node is a storage level ``j`` whose tile is fixed. Its children are every (spatial unrolling
below ``j``, child tile, loop order of ``j``) of the mapping space; for each the accesses of the
boundary between ``j`` and its child follow from the loop-nest formulas
(``accelsim.engines.loopnest``), evaluated here as arrays over all children instead of one
Python call each. Orders are one per distinct reuse signature (``space.canonical_orders``: a loop
of factor 1 drops out, and permutations deciding the same reuse are one child), so a 6-rank
convolution does not cost 720 orders per tile.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from accelsim.tiling import Fanout, LoopProblem, StorageLevel, tensor_roles
from accelsim.tiling_window import window_rows_array, window_sum_array
from mappers.tiling.space import canonical_orders, divisors, spatial_options


@dataclass
class Kids:
    """Arrays over children (length K): what the search needs to bound, sort and descend."""

    tc: np.ndarray  # K x R child tile
    tau: np.ndarray  # K x R temporal factors at level j
    sigma: np.ndarray  # K x R spatial factors (non-wave and wave) per rank
    wave: np.ndarray  # K x R the waves fanout's share of sigma
    option: np.ndarray  # K index into the spatial options (non-wave part)
    perm: np.ndarray  # K index into the permutations
    runs: np.ndarray  # K x T trailing irrelevant run at this boundary, per tensor
    pr: np.ndarray  # parent-side reads / writes at level j (bytes, without the pending part)
    pw: np.ndarray
    cr: np.ndarray  # child-side reads / writes at level j-1
    cw: np.ndarray
    pe: np.ndarray  # energy (pJ) of the parent-side / child-side accesses, per operand's energy
    ce: np.ndarray
    physical: np.ndarray  # instances of the child level in use per instance of j
    waves: np.ndarray
    temporal: np.ndarray  # product of tau
    spread_out: np.ndarray  # spatial factor of the ranks that do not index the output


@lru_cache(maxsize=4096)
def _vectors(limits: tuple[tuple[str, int], ...]) -> np.ndarray:
    """Every vector of divisors of the limits, one row each (read-only: it is cached)."""
    grids = [np.array(divisors(e), dtype=np.int64) for _, e in limits]
    if not grids:
        return np.zeros((1, 0), dtype=np.int64)
    out = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, len(grids))
    out.setflags(write=False)
    return out


class OutOfTime(Exception):
    """Raised inside ``build`` once the search's deadline has passed (a node with very many children)."""


def build(problem: LoopProblem, level: StorageLevel, child: StorageLevel | None, tile: dict[str, int],
          above_runs: tuple[int, ...], copies_child: int, perms: list[tuple[int, ...]], copies_out: int = 1,
          deadline: float = math.inf):
    """Children of a node; ``copies_out``: parent instances holding their own partial outputs."""
    ranks = list(problem.extents)
    R = len(ranks)
    tensors = problem.tensors
    options = spatial_options(level.fanouts, tile)
    waves_fo: Fanout | None = next((f for f in level.fanouts if f.waves), None)
    tile_v = np.array([tile[r] for r in ranks], dtype=np.int64)
    rems = np.array([[rem[r] for r in ranks] for _, rem in options], dtype=np.int64).reshape(len(options), R)
    if child is None:
        option = np.arange(len(options))
        tc = np.ones((len(options), R), dtype=np.int64)
    else:  # the child tiles that fit, once: an option's are those dividing what it leaves
        fitting = _vectors(tuple((r, tile[r]) for r in ranks))
        fitting = fitting[_fits(fitting, problem, child, copies_child)]
        step = max(1, (1 << 21) // max(1, len(fitting) * R))  # options per chunk: bounded memory
        parts = []
        for lo in range(0, len(options), step):
            ok = (rems[lo:lo + step, None, :] % fitting[None, :, :] == 0).all(axis=2)
            oi, fi = np.nonzero(ok)
            parts.append((oi + lo, fi))
        option = np.concatenate([p[0] for p in parts])
        tc = fitting[np.concatenate([p[1] for p in parts])]
    if len(tc) == 0:
        return options, None
    tau = rems[option] // tc
    sig = np.broadcast_to(tile_v, tc.shape) // rems[option]
    wave = np.ones_like(tau)
    if waves_fo is not None:
        allowed = np.array([waves_fo.allowed_ranks is None or r in waves_fo.allowed_ranks for r in ranks])
        wave = np.where(allowed[None, :], tau, 1)
        tau = np.where(allowed[None, :], 1, tau)
        sig = sig * wave
    wave_used = wave.prod(axis=1)
    waves = np.ones(len(tc), dtype=np.int64) if waves_fo is None else -(-wave_used // waves_fo.size)
    physical = sig.prod(axis=1) // wave_used * (wave_used if waves_fo is None else np.minimum(wave_used,
                                                                                               waves_fo.size))
    # Every child once per loop order of distinct reuse (``space.canonical_orders``), grouped by
    # which ranks have a loop at this level.
    indexes = tuple(frozenset(ti for ti, t in enumerate(tensors) if r in t.ranks) for r in ranks)
    index_of = _perm_index(R)
    code = (tau > 1).astype(np.int64) @ (1 << np.arange(R, dtype=np.int64))
    uniq, inverse = np.unique(code, return_inverse=True)
    row_parts, perm_parts = [], []
    for ui, u in enumerate(uniq):
        members = np.nonzero(inverse.ravel() == ui)[0]
        for order in canonical_orders(tuple(bool(u >> x & 1) for x in range(R)), indexes):
            row_parts.append(members)
            perm_parts.append(np.full(len(members), index_of[order], dtype=np.int64))
    rows, perm = np.concatenate(row_parts), np.concatenate(perm_parts)
    pick = lambda a: a[rows]
    tc, tau, sig, wave, option = pick(tc), pick(tau), pick(sig), pick(wave), pick(option)
    physical, waves = pick(physical), pick(waves)
    if time.perf_counter() > deadline:
        raise OutOfTime
    K, P = len(rows), 1
    extents = np.array([problem.extents[r] for r in ranks], dtype=np.float64)
    runs = np.ones((K * P, len(tensors)), dtype=np.int64)
    pr = np.zeros(K * P)
    pw = np.zeros(K * P)
    cr = np.zeros(K * P)
    cw = np.zeros(K * P)
    pe = np.zeros(K * P)
    ce = np.zeros(K * P)
    roles = tensor_roles(problem)
    perm_arr = np.array(perms, dtype=np.int64)[perm]  # (K*P) x R, outermost first
    for ti, t in enumerate(tensors):
        if time.perf_counter() > deadline:
            raise OutOfTime
        inside = np.array([r in t.ranks for r in ranks])
        run = np.ones(K * P, dtype=np.int64)
        closed = np.zeros(K * P, dtype=bool)
        for pos in range(R - 1, -1, -1):
            ridx = perm_arr[:, pos]
            f = np.take_along_axis(tau, ridx[:, None], axis=1)[:, 0]
            active = f > 1
            rel = inside[ridx]
            run = np.where(~closed & active & ~rel, run * f, run)
            closed |= active & rel
        run = np.where(closed, run, run * above_runs[ti])
        runs[:, ti] = run
        irr = ~inside
        if t.windows:  # accelsim.engines.loopnest.transfers: steps times footprints
            steps = np.rint(np.prod(extents[None, :] / (tc * sig), axis=1) / run)
            count_u, sum_u = visits(t, ranks, np.where(inside[None, :], tc * sig, tc), problem.extents)
            count_c, sum_c = visits(t, ranks, tc, problem.extents)
            base = np.rint(steps / count_u) * sum_u
            received = np.rint(steps * sig.prod(axis=1) / count_c) * sum_c
        else:
            base = float(problem.elements(t)) * np.prod(np.where(irr[None, :], extents[None, :] / tc, 1.0), axis=1)
            base = base / np.prod(np.where(irr[None, :], sig, 1), axis=1) / run
            base = np.rint(base)
            received = base * np.prod(np.where(irr[None, :], sig, 1), axis=1)
        b = t.dtype_bytes
        rp, wp = level.energy_pj_per_byte(roles[t.name])
        rc, wc = child.energy_pj_per_byte(roles[t.name]) if child is not None else (0.0, 0.0)
        if t.is_output:
            back = base - problem.elements(t) * copies_out
            pw += base * b
            pr += back * b
            pe += base * b * wp + back * b * rp
            if child is not None:
                cr += received * b
                cw += back * b
                ce += received * b * rc + back * b * wc
        else:
            pr += base * b
            pe += base * b * rp
            if child is not None:
                cw += received * b
                ce += received * b * wc
    temporal = tau.prod(axis=1)
    out = problem.output
    spread_out = np.prod(np.where(np.array([r not in out.ranks for r in ranks])[None, :], sig, 1), axis=1)
    return options, Kids(tc, tau, sig, wave, option, perm, runs, pr, pw, cr, cw, pe, ce, physical, waves, temporal,
                         spread_out)


def footprints(t, ranks: list[str], tiles: np.ndarray) -> np.ndarray:
    """``TensorAccess.footprint`` of every row of ``tiles`` (K x R tile extents)."""
    inside = {w.out_rank for w in t.windows} | {w.filter_rank for w in t.windows}
    cols = [ranks.index(r) for r in t.ranks if r not in inside]
    out = tiles[:, cols].prod(axis=1) if cols else np.ones(len(tiles), dtype=np.int64)
    for w in t.windows:
        out = out * window_rows_array(tiles[:, ranks.index(w.out_rank)], tiles[:, ranks.index(w.filter_rank)],
                                      w.stride, w.dilation)
    return out


def visits(t, ranks: list[str], tiles: np.ndarray, extents: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """``TensorAccess.visits`` of every row of ``tiles``: (grid positions, elements summed over them)."""
    inside = {w.out_rank for w in t.windows} | {w.filter_rank for w in t.windows}
    cols = [ranks.index(r) for r in t.ranks if r not in inside]
    total = tiles[:, cols].prod(axis=1) if cols else np.ones(len(tiles), dtype=np.int64)
    count = np.ones(len(tiles), dtype=np.int64)
    for w in t.windows:
        a, b = tiles[:, ranks.index(w.out_rank)], tiles[:, ranks.index(w.filter_rank)]
        ea, eb = extents[w.out_rank], extents[w.filter_rank]
        count = count * (ea // a) * (eb // b)
        total = total * window_sum_array(a, b, ea, eb, w)
    return count, total


@lru_cache(maxsize=8)
def _perm_index(n: int) -> dict[tuple[int, ...], int]:
    return {p: i for i, p in enumerate(itertools.permutations(range(n)))}


def _fits(tc: np.ndarray, problem: LoopProblem, level: StorageLevel, copies: int) -> np.ndarray:
    from accelsim.tiling import capacity_groups

    ranks = list(problem.extents)
    need = {}
    for t in problem.tensors:
        need[t.name] = footprints(t, ranks, tc) * t.dtype_bytes * copies
    if level.capacity_by_tensor is not None:
        ok = np.ones(len(tc), dtype=bool)
        for cap, names in capacity_groups(level, problem):
            if names:
                ok &= sum(need[n] for n in names) <= cap
        return ok
    if level.capacity_bytes is None:
        return np.ones(len(tc), dtype=bool)
    return sum(need.values()) <= level.capacity_bytes


def permutations(n: int) -> list[tuple[int, ...]]:
    return list(itertools.permutations(range(n)))


def order_of(kids: Kids, i: int, perms, ranks) -> tuple[tuple[str, int], ...]:
    return tuple((ranks[r], int(kids.tau[i, r])) for r in perms[kids.perm[i]] if kids.tau[i, r] > 1)
