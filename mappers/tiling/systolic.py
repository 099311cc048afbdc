"""The systolic engine's default mapper: per GEMM, SRAM tiles, loop orders and the use of the array.

Why a mapper of its own beside the branch and bound (``search.py``): on a systolic array every
fold pays the array's fill and drain, a cost per change of the stationary tile that the general
loop-nest latency model does not have, and the whole-model engine needs a mapping for every
distinct GEMM of a model in well under a millisecond. On this hierarchy
(``accelsim.engines.systolic.nest.array_hierarchy``: PEs of one word, per-operand SRAMs halved
for double buffering, DRAM; rows and columns unroll the dataflow's ranks only) the space
collapses to a closed form, so it is enumerated completely with numpy:

* PE tiles are one element (one word of each operand fits).
* DRAM bytes depend only on the SRAM tile ``T`` and the innermost DRAM loop ``x``: each operand
  misses exactly one rank ``r_t`` (A misses n, B misses m, C misses k), so with ``F = E / T`` it
  moves ``|t| * F[r_t]`` elements, or ``|t|`` when ``x = r_t`` (the innermost loop keeps it);
  the output's partial sums go up that many times and all but the first visits come back
  (``accelsim.engines.loopnest``).
* Array cycles (``nest.array_cycles``): ``iterations + folds * (fill + drain)``. The spatial
  factors only shrink both terms, so each edge takes the largest divisor of its rank's tile that
  fits it; the stream rank innermost at the SRAMs keeps the stationary tile longest; the stream
  loop at DRAM extends a fold only when it is innermost there and the SRAM tile of the two
  spatial ranks is exactly what the array holds.

The objective, per GEMM: the smaller of the array cycles and the DRAM time is hidden behind the
other when tiles double-buffer, so minimise ``max(busy cycles, DRAM bytes / bandwidth)``, then
DRAM bytes, then busy cycles, among the nests that move no more DRAM bytes than SCALE-Sim's
fixed fold order; the fold order itself (costed exactly by ``simulate_gemm``, whose residency
keeps partial tiles, which a loop nest cannot express) is kept when no nest beats it. So the
result is never worse than the fold order in DRAM bytes, nor on the objective.
``tests/test_tiling_systolic_default.py`` checks the closed form against plain enumeration of
every nest (``tests/tiling_bruteforce.py``) replayed by the engine.
"""
from __future__ import annotations

import numpy as np

from accelsim.engines.systolic.nest import DATAFLOW_RANKS, fold_overhead_cycles
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.tiling import LevelLoops, LoopNest, LoopProblem, tensor_roles
from mappers.tiling.space import divisors

RANKS = ("m", "k", "n")
MISSING = {"A": "n", "B": "m", "C": "k"}  # the one GEMM rank each operand is not indexed by


def _largest_divisor_upto(values: np.ndarray, extent: int, limit: int) -> np.ndarray:
    """For each tile (a divisor of ``extent``), its largest divisor that fits ``limit`` PEs."""
    table = {d: max(x for x in divisors(d) if x <= limit) for d in divisors(extent)}
    return np.vectorize(table.__getitem__, otypes=[np.int64])(values) if len(values) else values


def _nest(problem: LoopProblem, spec: SystolicAccelerator, tile: dict[str, int], inner: str) -> LoopNest:
    ext = {r: problem.extents.get(r, 1) for r in ("b", *RANKS)}
    sr, sc, t = DATAFLOW_RANKS[spec.array.dataflow]
    f = {r: ext[r] // tile[r] for r in RANKS}
    outer = [r for r in RANKS if r != inner and f[r] > 1]
    dram = tuple((r, v) for r, v in (("b", ext["b"]), *((r, f[r]) for r in (*outer, inner))) if v > 1)
    s_r = max(d for d in divisors(tile[sr]) if d <= spec.array.rows)
    s_c = max(d for d in divisors(tile[sc]) if d <= spec.array.cols)
    sram = tuple((r, v) for r, v in ((sr, tile[sr] // s_r), (sc, tile[sc] // s_c), (t, tile[t])) if v > 1)
    spatial = {name: {r: v} for name, r, v in (("rows", sr, s_r), ("cols", sc, s_c)) if v > 1}
    return LoopNest(problem.name, dict(problem.extents),
                    (LevelLoops("dram", dram), LevelLoops("sram", sram, spatial), LevelLoops("pe", ())))


def best_array_nest(problem: LoopProblem, spec: SystolicAccelerator, max_dram_bytes: float = float("inf"),
                    offchip: tuple[float, float, float] = (1.0, 1.0, 1.0)
                    ) -> tuple[LoopNest, tuple[float, float, float]] | None:
    """The nest minimising ``(max(busy, DRAM / bandwidth), DRAM bytes, busy cycles)`` with DRAM
    bytes <= ``max_dram_bytes``, and its key; None when no tile fits or none meets the bound.

    ``offchip``: the share of A's and B's reads, and of C's final write, that reach DRAM (0 for
    an operand the engine keeps on chip, ``accelsim.engines.accelerator.lowering.Placement``);
    partial sums that leave the SRAM and come back always do.
    """
    ext = {r: problem.extents.get(r, 1) for r in ("b", *RANKS)}
    roles = tensor_roles(problem)
    by_role = {roles[t.name]: t for t in problem.tensors}
    sr, sc, stream = DATAFLOW_RANKS[spec.array.dataflow]
    grids = np.meshgrid(*(np.array(divisors(ext[r]), dtype=np.int64) for r in RANKS), indexing="ij")
    tile = {r: g.reshape(-1) for r, g in zip(RANKS, grids)}
    capacity = {"A": spec.sram.ifmap_bytes, "B": spec.sram.filter_bytes, "C": spec.sram.ofmap_bytes}
    fits = np.ones(len(tile["m"]), dtype=bool)
    for role, t in by_role.items():  # both halves of the double buffer hold a tile
        need = 2 * t.dtype_bytes * np.prod([tile[r] for r in RANKS if r in (set(RANKS) - {MISSING[role]})], axis=0)
        fits &= need <= capacity[role]
    if not fits.any():
        return None
    tile = {r: v[fits] for r, v in tile.items()}
    f = {r: ext[r] // tile[r] for r in RANKS}
    s_r = _largest_divisor_upto(tile[sr], ext[sr], spec.array.rows)
    s_c = _largest_divisor_upto(tile[sc], ext[sc], spec.array.cols)
    whole_edges = (tile[sr] == s_r) & (tile[sc] == s_c)
    iterations = float(ext["b"] * ext["m"] * ext["k"] * ext["n"]) / (s_r * s_c)
    elements = {role: float(ext["b"]) * np.prod([ext[r] for r in RANKS if r != MISSING[role]])
                for role in by_role}
    no_loops = np.all(np.stack([f[r] == 1 for r in RANKS]), axis=0)
    skew = fold_overhead_cycles(spec)
    bw = spec.dram_bytes_per_cycle
    keys, which = [], []
    for x, inner in enumerate(RANKS):
        valid = (f[inner] > 1) | no_loops
        dram = np.zeros(len(valid))
        for role, t in by_role.items():
            visits = np.where(inner == MISSING[role], 1, f[MISSING[role]]).astype(np.float64)
            share = offchip["ABC".index(role)]
            dram += elements[role] * t.dtype_bytes * (2 * (visits - 1) + share if t.is_output else share * visits)
        run = tile[stream] * np.where(whole_edges & (inner == stream), f[stream], 1)
        folds = iterations / run
        busy = iterations + folds * skew
        est = np.maximum(busy, dram / bw)
        ok = np.flatnonzero(valid & (dram <= max_dram_bytes))
        keys.append(np.stack([est[ok], dram[ok], busy[ok]], axis=1))
        which.append(np.stack([np.full(len(ok), x), ok], axis=1))
    key_rows, picks = np.concatenate(keys), np.concatenate(which)
    if not len(key_rows):
        return None
    best = np.lexsort((key_rows[:, 2], key_rows[:, 1], key_rows[:, 0]))[0]
    key = tuple(float(v) for v in key_rows[best])
    inner, i = RANKS[int(picks[best, 0])], int(picks[best, 1])
    chosen = {r: int(tile[r][i]) for r in RANKS}
    return _nest(problem, spec, chosen, inner), key


def map_array_gemm(problem: LoopProblem, spec: SystolicAccelerator, fold_dram_bytes: float,
                   fold_busy_cycles: float, offchip: tuple[float, float, float] = (1.0, 1.0, 1.0)
                   ) -> tuple[LoopNest | None, dict]:
    """The systolic default mapper (entry point ``accelsim.default_mappers: systolic``).

    ``fold_*``: SCALE-Sim's fold order on the same GEMM as the engine counts it (off-chip bytes
    under the same ``offchip`` shares, see ``best_array_nest``). Returns the nest to replay, or
    None to keep the fold order, and what was decided (for the report).
    """
    fold_key = (max(fold_busy_cycles, fold_dram_bytes / spec.dram_bytes_per_cycle), fold_dram_bytes,
                fold_busy_cycles)
    found = best_array_nest(problem, spec, fold_dram_bytes, offchip)
    if found is None or found[1] >= fold_key:
        return None, {"mapper": "fold order", "reason": "no loop nest beats SCALE-Sim's fold order"}
    return found[0], {"mapper": "tiling", "estimate_cycles": found[1][0]}
