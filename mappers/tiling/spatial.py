"""The spatial kind's default mapper: per GEMM, the global-buffer tile and the DRAM loop order.

Why a mapper at all: the FuseMax artifact's end-to-end model streams every operand once, which
is only true when a plan exists that keeps what is reused resident in the 16-32 MiB global
buffer. A long prefill's FFN input (4096 tokens x 4096 x 2 B = 32 MiB) and its weight block
both exceed it, and then some operand must be fetched again; this mapper chooses how.

The hierarchy is the engine's (``accelsim.engines.accelerator.spatial_nest.buffer_hierarchy``):
PEs of one word, the shared double-buffered global buffer with the 2D array below it (rows
unroll M, cols unroll N, in waves), DRAM. On it the space collapses to a closed form, so every
nest is enumerated with numpy (well under a millisecond per shape):

* PE tiles are one element; at the buffer, M and N are all spatial (wave fanouts), K temporal;
  the batch rank indexes every operand, so it loops outermost at DRAM with a tile of one
  (a batch tile or another position only shrinks runs and grows the buffer tile).
* DRAM bytes depend only on the buffer tile ``T`` and the innermost DRAM loop ``x``: each operand
  misses one rank (A misses n, B misses m, C misses k), so with ``F = E / T`` it moves
  ``|t| * F[miss]`` elements, or ``|t|`` when ``x`` is its missing rank; the output's partial
  sums go up that many times and all but the first visit come back (``accelsim.engines.loopnest``).
* Cycles: ``batch * F_m * ceil(T_m / rows) * F_n * ceil(T_n / cols) * K * mac cycles``.
* Extents that tile badly (a prime M larger than the array) are also tried padded up to a
  multiple of the array edge; the padding is computed and moved as data (never below the real
  cost), and the unpadded optimum is kept when it is no worse.

Objective (``objective="latency"``, the default, as the systolic mapper): DRAM time and array
time overlap when tiles double-buffer, so minimise ``max(cycles, DRAM bytes / bandwidth)``,
then DRAM bytes, then cycles; so the data stay resident (only compulsory bytes) whenever a
fastest plan allows it. ``objective="dram"``: DRAM bytes first (resident whenever any plan
allows it), then that time, then cycles. Last, either way: the fewest bytes through the buffer
(an operand the engine keeps on chip costs no DRAM when fetched again, but its buffer reads do). ``tests/test_tiling_spatial_default.py`` checks both
against plain enumeration of every nest replayed by the engine.
"""
from __future__ import annotations

import math

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.tiling import LevelLoops, LoopNest, LoopProblem, tensor_roles
from mappers.tiling.space import divisors

RANKS = ("m", "k", "n")
MISSING = {"A": "n", "B": "m", "C": "k"}  # the one GEMM rank each operand is not indexed by
OBJECTIVES = ("latency", "dram")


def padded_extents(problem: LoopProblem, spec: SpatialAccelerator) -> list[dict[str, int]]:
    """The problem's extents, then M and/or N padded up to a multiple of the array's rows / cols
    (only where the extent is larger than the edge and not a multiple of it); distinct ones."""
    rows, cols = spec.array_2d.rows, spec.array_2d.cols
    ext = dict(problem.extents)
    options = []
    for pad_m in (False, True):
        for pad_n in (False, True):
            e = dict(ext)
            for r, edge, on in (("m", rows, pad_m), ("n", cols, pad_n)):
                if on and r in e and e[r] > edge:
                    e[r] = -(-e[r] // edge) * edge
            if e not in options:
                options.append(e)
    return options


def _nest(name: str, ext: dict[str, int], tile: dict[str, int], inner: str) -> LoopNest:
    f = {r: ext.get(r, 1) // tile[r] for r in RANKS}
    outer = [r for r in RANKS if r != inner and f[r] > 1]
    dram = tuple((r, v) for r, v in (("b", ext.get("b", 1)), *((r, f[r]) for r in (*outer, inner))) if v > 1)
    buffer = (("k", tile["k"]),) if tile["k"] > 1 else ()
    spatial = {fo: {r: tile[r]} for fo, r in (("rows", "m"), ("cols", "n")) if tile[r] > 1}
    return LoopNest(name, {r: ext[r] for r in ext}, (LevelLoops("dram", dram), LevelLoops("buffer", buffer, spatial),
                                                      LevelLoops("pe", ())))


def _candidates(ext: dict[str, int], problem: LoopProblem, spec: SpatialAccelerator,
                offchip: tuple[float, float, float]):
    """Every (inner loop, tile) of one set of extents: key columns and the tiles."""
    e = {r: ext.get(r, 1) for r in ("b", *RANKS)}
    roles = tensor_roles(problem)
    by_role = {roles[t.name]: t for t in problem.tensors}
    wb = max(t.dtype_bytes for t in problem.tensors)
    grids = np.meshgrid(*(np.array(divisors(e[r]), dtype=np.int64) for r in RANKS), indexing="ij")
    tile = {r: g.reshape(-1) for r, g in zip(RANKS, grids)}
    # all three operands share the buffer; both halves of the double buffer hold a tile
    need = 2 * wb * (tile["m"] * tile["k"] + tile["k"] * tile["n"] + tile["m"] * tile["n"])
    fits = need <= spec.buffer_bytes
    tile = {r: v[fits] for r, v in tile.items()}
    f = {r: e[r] // tile[r] for r in RANKS}
    a2 = spec.array_2d
    cycles = (float(e["b"] * e["k"] * a2.cost("mac").cycles) * f["m"] * -(-tile["m"] // a2.rows)
              * f["n"] * -(-tile["n"] // a2.cols))
    elements = {role: float(e["b"]) * math.prod(e[r] for r in RANKS if r != MISSING[role]) for role in by_role}
    no_loops = np.all(np.stack([f[r] == 1 for r in RANKS]), axis=0)
    bw = spec.dram.bytes_per_cycle(spec.clock_hz)
    out = []
    for inner in RANKS:
        valid = (f[inner] > 1) | no_loops
        dram = np.zeros(len(valid))
        moved = np.zeros(len(valid))  # every operand's traffic as if off chip (the buffer fills it takes)
        for role, t in by_role.items():
            visits = np.where(inner == MISSING[role], 1, f[MISSING[role]]).astype(np.float64)
            share = offchip["ABC".index(role)]
            dram += elements[role] * t.dtype_bytes * (2 * (visits - 1) + share if t.is_output else share * visits)
            moved += elements[role] * t.dtype_bytes * (2 * visits - 1 if t.is_output else visits)
        ok = np.flatnonzero(valid)
        out.append((inner, np.maximum(cycles, dram / bw)[ok], dram[ok], np.broadcast_to(cycles, dram.shape)[ok],
                    moved[ok], {r: v[ok] for r, v in tile.items()}))
    return out


def best_buffer_nest(problem: LoopProblem, spec: SpatialAccelerator, offchip: tuple[float, float, float] = (1.0,) * 3,
                     objective: str = "latency", pad: bool = True
                     ) -> tuple[LoopNest, tuple[float, float, float]] | None:
    """The best nest and its key ``(time, DRAM bytes, cycles)`` (ordered by ``objective``), or
    None when not even one element of each operand fits the buffer (twice, double buffered).

    ``offchip``: the share of A's and B's reads and of C's final write that reach DRAM (0 for an
    operand the engine keeps on chip, ``accelsim.engines.accelerator.lowering.Placement``);
    partial sums that leave the buffer and come back always do.
    """
    if objective not in OBJECTIVES:
        raise AccelsimError(f"unknown objective {objective!r}", field="objective", allowed=OBJECTIVES)
    order = (0, 1, 2) if objective == "latency" else (1, 0, 2)
    best = None
    for ext in (padded_extents(problem, spec) if pad else [dict(problem.extents)]):
        for inner, time, dram, cycles, moved, tile in _candidates(ext, problem, spec, offchip):
            if not len(time):
                continue
            cols = (time, dram, cycles)
            # last tie-break: the fewest bytes through the buffer, on-chip operands' refetches included
            i = int(np.lexsort((moved, *(cols[j] for j in reversed(order))))[0])
            key = (float(time[i]), float(dram[i]), float(cycles[i]))
            rank = (*(key[j] for j in order), float(moved[i]))
            if best is None or rank < best[0]:
                best = (rank, key, ext, {r: int(v[i]) for r, v in tile.items()}, inner)
    if best is None:
        return None
    _, key, ext, tile, inner = best
    return _nest(problem.name, ext, tile, inner), key


def map_spatial_gemm(problem: LoopProblem, spec: SpatialAccelerator, offchip: tuple[float, float, float] = (1.0,) * 3
                     ) -> tuple[LoopNest | None, dict]:
    """The spatial default mapper (entry point ``accelsim.default_mappers: spatial``): the nest
    for the engine to replay (None when nothing fits the buffer) and what was decided."""
    found = best_buffer_nest(problem, spec, offchip)
    if found is None:
        return None, {"mapper": "none", "reason": "not one element of each operand fits the global buffer twice"}
    return found[0], {"mapper": "tiling", "estimate_cycles": found[1][0]}
