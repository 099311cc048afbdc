"""Cycle-level systolic-array engine: output-, weight- and input-stationary GEMMs with folds.

What it models
--------------
A GEMM ``ofmap[M,N] = ifmap[M,K] @ filter[K,N]`` (a convolution arrives already lowered to
this form, im2col, M = output pixels, K = R*S*C, N = filters) runs on a ``rows x cols`` array.
Each dataflow pins one operand in the array and streams the others, exactly as SCALE-Sim 3.0
describes it (Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
Accelerators using SCALE-Sim", ISPASS 2020, Sec. III), which gives the spatial sizes Sr, Sc and
the temporal size T:

====  =====  =====  =====  ===========================================
flow  Sr     Sc     T      pinned in the array
====  =====  =====  =====  ===========================================
os    M      N      K      the outputs (one output per PE)
ws    K      N      M      a K x N block of the filter
is    K      M      N      a K x M block of the (im2col) ifmap
====  =====  =====  =====  ===========================================

The work splits into ``ceil(Sr/rows) * ceil(Sc/cols)`` folds, visited column fold outer, row
fold inner (SCALE-Sim's order). Each fold streams ``T`` vectors through the skewed array and
then waits for fill and drain, so every fold costs a fixed number of cycles ``c``:
``T + rows + cols - 2`` for os (operands skew in over rows+cols-2 cycles while the outputs
accumulate in place) and ``2*rows + cols + T - 2`` for ws and is (``rows`` cycles to load the
stationary block, then the skewed stream and the drain). SCALE-Sim reports as its stall-free
cycle count the index of the last cycle, ``folds * c - 1``; we report the same number as
``compute_cycles`` so the two tools agree exactly.

SRAM accesses (words) come from what each fold streams over the array edges: os reads the
ifmap once per column fold and the filter once per row fold; ws reads the ifmap once per
column fold and every filter word once; is reads every ifmap word once and the filter once
per column fold. Outputs: os writes each output once; ws and is write a partial sum for every
row fold and read it back for every row fold after the first (accumulation).

DRAM traffic comes from double-buffered operand SRAMs: half of each SRAM (``B``) holds the
working set, the other half receives the next fold's data while the current fold computes.
The scratchpad is software managed and knows the schedule, so it keeps data that will be used
again and drops data that will not. Per operand the fold sequence touches tiles in one of
three patterns, each with a closed form (checked against an explicit tile-residency state
machine in the reference path):

* cycled (os ifmap, ws ifmap, is filter): the inner loop walks ``D`` bytes of distinct tiles,
  repeated for each outer iteration ``r`` times. The first ``B`` bytes stay resident, the rest
  stream: ``D + (r - 1) * max(0, D - B)``.
* held (os filter; ws/is ofmap partial sums): one tile of ``S`` bytes is used by ``h``
  consecutive folds; what does not fit is re-streamed (or, for partial sums, spilled and read
  back) ``h - 1`` times: ``S + (h - 1) * max(0, S - B)``.
* once (ws filter, is ifmap, os ofmap): every tile is touched by one fold only: compulsory.

So DRAM bytes are never below the compulsory bytes, equal them when every operand fits its
buffer half, and never fall as a buffer shrinks. For a convolution the ifmap's distinct words
(the input actually under the sliding window) are fewer than the im2col matrix's M*K; they are
spread over the tiles in proportion to each tile's share of the tiled rank (an integer
apportionment, so per-tile counts are whole words and sum exactly to the footprint). This
apportionment is an approximation of the exact window overlap between tiles.

Stalls come from one shared DRAM channel of ``bw`` bytes per cycle that serves, in order, the
load of fold ``j+1`` (it may start when fold ``j`` starts, since that frees the buffer half) and
the write-back of fold ``j``'s outputs (after fold ``j`` ends). A transfer of ``X`` bytes occupies
the channel for ``X / bw`` cycles (exact rational time, so short transfers share a
cycle). Fold ``j+1`` starts at the first cycle boundary at or after both the end of fold ``j``
and the end of its load; the gap is a stall. The first load (before cycle 0)
and the last write-back (after the last fold) are reported separately as ``prefetch_cycles``
and ``drain_cycles``, matching SCALE-Sim's split between "Total Cycles" and "Total Cycles
(incl. prefetch)".

Two paths compute all of this. ``simulate_gemm_reference`` builds every fold's demand on the
array edges, steps it cycle by cycle for as long as the demand schedules something (a fold's
length is read off its demand, not taken from the formula above; unused lanes of a partial fold
keep their skewed slots, as in SCALE-Sim's padded demand matrices, so every fold holds the array
for the full skew), counting SRAM accesses and busy PEs, runs the tile
residency state machine fold by fold and steps the DRAM channel cycle by cycle; it is for
small shapes and tests. ``simulate_gemm`` uses the closed forms, numpy over the fold grid and
the pipeline recurrence over runs of identical folds (milliseconds for a 256x1024x1024 GEMM).
Property tests prove the two agree exactly, and that the reference demand really computes the
GEMM when executed on numbers.

Deliberate differences from SCALE-Sim 3.0
-----------------------------------------
1. Output-stationary SRAM ofmap writes: SCALE-Sim adds ``rows + cols`` per fold on top of the
   M*N real writes (the size of the padded, flipped demand block, not data). We count the real
   writes only: M*N.
2. ws/is partial-sum reads: SCALE-Sim counts no ofmap SRAM reads; accumulating across row
   folds must read each partial sum back, so we report ``(row_folds - 1) * M * N`` reads.
3. DRAM traffic and stalls use the double-buffer model above with one DRAM bandwidth for all
   operands, not SCALE-Sim's per-operand request-queue trace simulation; total cycles and DRAM
   bytes therefore differ from SCALE-Sim whenever buffers or bandwidth bind. SCALE-Sim's DRAM
   counts are also not physically bounded by the compulsory bytes (they count padded fetch
   lines).
4. Batched GEMMs (``batch > 1``) run as ``batch`` independent SCALE-Sim layers: every count is
   multiplied by ``batch`` (including the per-layer ``- 1`` in ``compute_cycles``).
5. Utilization and seconds use the cycles the array is actually busy, ``busy_cycles = folds * c``
   (plus stalls). SCALE-Sim divides by its Total Cycles, which is one less (the index of the last
   cycle), so its utilization exceeds 100% on degenerate layers (a 1x1 array, or a 1x1x1 GEMM
   reports 0 cycles). ``compute_cycles`` itself keeps SCALE-Sim's convention so it can be compared
   one to one; ``total_cycles = compute_cycles + stall_cycles`` likewise matches SCALE-Sim's
   Total Cycles when there are no stalls.
6. ``mapping_efficiency`` is a fraction in [0, 1] (SCALE-Sim prints a percentage) computed
   from the exact closed form ``Sr*Sc / (folds*rows*cols)``; SCALE-Sim averages per-fold
   floats, so the two agree to floating-point rounding (about 1e-15 relative).
7. A fold's tile larger than its buffer half: the double-buffer model above still loads the
   whole tile before the fold starts (and writes a whole output tile after it), a pipeline that
   cannot physically exist (the tile does not fit the half it is loaded into). The residency
   policy is unchanged, so traffic stays sound (never below compulsory, never rising with a
   bigger buffer), but stalls there are approximate, likely optimistic: a real design would
   stream the tile through the buffer during the fold. Such rows carry
   ``tile_exceeds_buffer = True`` and ``simulate_layers`` lists them in the Report meta.
8. Sizes: every count is an exact integer at any size (int64 where a bound proves it cannot
   overflow, Python integers otherwise); dimensions are limited to 2**53 and a layer to
   ``MAX_FOLDS`` folds, beyond which one AccelsimError explains the limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import DATAFLOWS, SystolicAccelerator
from accelsim.ir import Einsum, GemmShape, Graph, OpKind
from accelsim.report import Report

OPERANDS: tuple[str, ...] = ("ifmap", "filter", "ofmap")


# --------------------------------------------------------------------------------------------
# Geometry shared by both paths
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FoldGeometry:
    """How one GEMM folds onto one array under one dataflow."""

    dataflow: str
    m: int
    k: int
    n: int
    rows: int
    cols: int

    @property
    def spatial_temporal(self) -> tuple[int, int, int]:
        """(Sr, Sc, T), SCALE-Sim's spatial rows, spatial columns and temporal extent."""
        if self.dataflow == "os":
            return self.m, self.n, self.k
        if self.dataflow == "ws":
            return self.k, self.n, self.m
        return self.k, self.m, self.n

    @property
    def row_folds(self) -> int:
        return -(-self.spatial_temporal[0] // self.rows)

    @property
    def col_folds(self) -> int:
        return -(-self.spatial_temporal[1] // self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def cycles_per_fold(self) -> int:
        t = self.spatial_temporal[2]
        if self.dataflow == "os":
            return t + self.rows + self.cols - 2
        return 2 * self.rows + self.cols + t - 2

    def used(self, fold_index: int, size: int, width: int) -> int:
        """Lanes a fold of a rank of extent ``size`` occupies on an edge ``width`` wide."""
        return min(width, size - fold_index * width)


def apportion(total: int, edges: np.ndarray, extent: int) -> np.ndarray:
    """Split ``total`` whole units over the intervals ``edges[i]..edges[i+1]`` of ``0..extent``.

    Each interval gets its share in proportion to its length, rounded so the parts are whole and
    sum exactly to ``total`` (floor of the cumulative share; integer arithmetic, no floats).
    Exact for any size: when ``edges * total`` could leave int64 the products are Python ints
    (object arrays) instead of silently wrapping.
    """
    edges = np.asarray(edges)
    largest = int(edges.max(initial=0))
    dtype = np.int64 if largest * int(total) < INT64_SAFE else object
    cumulative = (edges.astype(dtype) * int(total)) // int(extent)
    return np.diff(cumulative)


def fold_edges(size: int, width: int, dtype: Any = np.int64) -> np.ndarray:
    return np.minimum(np.arange(0, -(-size // width) + 1, dtype=np.int64) * width, size).astype(dtype)


# Why these limits: the fast path keeps a few numbers per fold (numpy arrays over the fold
# grid), so the fold count bounds its memory (about 200 bytes per fold) and time (measured
# about 8 s per million folds on this project's 2-core machine); dimensions above 2**53 are no
# longer exact as floats, and seconds, utilization and energy are floats.
MAX_FOLDS = 1 << 22
MAX_DIM = 1 << 53
# Counts whose intermediates stay below this bound are computed in int64; above it in Python ints.
INT64_SAFE = 1 << 62


def _validate(shape: GemmShape, hw: SystolicAccelerator) -> None:
    for label in ("m", "k", "n", "batch"):
        value = getattr(shape, label)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise AccelsimError(f"must be a positive integer, got {value!r}", field=f"gemm.{label}")
        if value > MAX_DIM:
            raise AccelsimError(f"{value} is too large", field=f"gemm.{label}",
                                allowed=f"a positive integer up to 2**53 = {MAX_DIM}")
    if hw.array.dataflow not in DATAFLOWS:
        raise AccelsimError(f"unknown dataflow {hw.array.dataflow!r}", field="array.dataflow", allowed=DATAFLOWS)


def _geometry(shape: GemmShape, hw: SystolicAccelerator) -> FoldGeometry:
    """Validate the shape and fold it onto the array; refuse fold grids the engine cannot hold."""
    _validate(shape, hw)
    geo = FoldGeometry(hw.array.dataflow, int(shape.m), int(shape.k), int(shape.n), hw.array.rows, hw.array.cols)
    if geo.folds > MAX_FOLDS:
        raise AccelsimError(
            f"{shape.m}x{shape.k}x{shape.n} folds {geo.folds} times onto a {geo.rows}x{geo.cols} "
            f"{geo.dataflow} array; the engine keeps per-fold state and accepts at most {MAX_FOLDS} folds per "
            "layer (split the layer, or use a larger array)", field="gemm", allowed=f"at most {MAX_FOLDS} folds")
    return geo


def _count_dtype(geo: FoldGeometry, ifmap_words: int, word_bytes: int, caps: tuple[int, ...]) -> Any:
    """int64 when every per-fold intermediate provably fits, else ``object`` (exact Python ints).

    Bounds: the ifmap apportionment multiplies at most ``max(M, K) * ifmap_words``; every byte
    count and every sum over folds is at most ``folds * (all operand words) * word_bytes``.
    """
    m, k, n = geo.m, geo.k, geo.n
    words = ifmap_words + m * k + k * n + m * n
    bound = max(max(m, k) * ifmap_words, (geo.folds + 1) * words * word_bytes, *caps)
    return np.int64 if bound < INT64_SAFE else object


@dataclass(frozen=True)
class _Buffers:
    """Bytes of the active half of each double-buffered SRAM."""

    ifmap: int
    filter: int
    ofmap: int

    @classmethod
    def of(cls, hw: SystolicAccelerator) -> "_Buffers":
        return cls(hw.sram.ifmap_bytes // 2, hw.sram.filter_bytes // 2, hw.sram.ofmap_bytes // 2)


def _tile_exceeds_buffer(tiles: dict[str, Any], buf: _Buffers, word_bytes: int) -> bool:
    """True when some fold's tile of some operand is larger than that operand's buffer half.

    The double-buffer model then still loads the whole tile before the fold starts (and writes a
    whole output tile after it), a pipeline no real buffer could hold; traffic stays sound (the
    residency policy is unchanged), but the stall estimate there is approximate, likely optimistic.
    """
    caps = {"ifmap": buf.ifmap, "filter": buf.filter, "ofmap": buf.ofmap}
    return any(int(tiles["words"][op].max()) * word_bytes > caps[op] for op in OPERANDS)


def _tile_words(geo: FoldGeometry, ifmap_words: int, dtype: Any = np.int64) -> dict[str, Any]:
    """Per-tile word counts for each operand, indexed by the fold coordinates that pick the tile.

    Returns arrays: for each operand, a 2D array ``[col_fold, row_fold]`` of the words the fold
    touches, plus the key array naming which tile (so equal keys mean the same data).
    ``dtype`` is ``object`` when the counts could leave int64 (see ``_count_dtype``).
    """
    m, k, n, rows, cols = geo.m, geo.k, geo.n, geo.rows, geo.cols
    sr, sc, _ = geo.spatial_temporal
    r_edges, c_edges = fold_edges(sr, rows, dtype), fold_edges(sc, cols, dtype)
    used_r, used_c = np.diff(r_edges), np.diff(c_edges)
    fr_n, fc_n = len(used_r), len(used_c)
    zeros = np.zeros((fc_n, fr_n), dtype=dtype)
    fr_idx = np.broadcast_to(np.arange(fr_n), (fc_n, fr_n))
    fc_idx = np.broadcast_to(np.arange(fc_n)[:, None], (fc_n, fr_n))
    if geo.dataflow == "os":  # Sr = M (rows), Sc = N (cols)
        ifmap = zeros + apportion(ifmap_words, r_edges, m)[None, :]
        filt = zeros + (k * used_c)[:, None]
        ofmap = zeros + used_c[:, None] * used_r[None, :]
        keys = {"ifmap": fr_idx, "filter": fc_idx, "ofmap": fc_idx * fr_n + fr_idx}
    elif geo.dataflow == "ws":  # Sr = K (rows), Sc = N (cols)
        ifmap = zeros + apportion(ifmap_words, r_edges, k)[None, :]
        filt = zeros + used_c[:, None] * used_r[None, :]
        ofmap = zeros + (m * used_c)[:, None]
        keys = {"ifmap": fr_idx, "filter": fc_idx * fr_n + fr_idx, "ofmap": fc_idx}
    else:  # is: Sr = K (rows), Sc = M (cols)
        per_col = apportion(ifmap_words, c_edges, m)  # then each column block's words over its K blocks
        ifmap = np.diff((per_col[:, None] * r_edges[None, :]) // k, axis=1)
        filt = zeros + (used_r * n)[None, :]
        ofmap = zeros + (used_c * n)[:, None]
        keys = {"ifmap": fc_idx * fr_n + fr_idx, "filter": fr_idx, "ofmap": fc_idx}
    return {"words": {"ifmap": ifmap, "filter": filt, "ofmap": ofmap}, "keys": keys,
            "used_r": used_r, "used_c": used_c}


def _sram_counts(geo: FoldGeometry) -> tuple[dict[str, int], dict[str, int]]:
    """Closed-form SRAM reads and array-side writes, in words (see module docstring)."""
    m, k, n = geo.m, geo.k, geo.n
    if geo.dataflow == "os":
        reads = {"ifmap": geo.col_folds * m * k, "filter": geo.row_folds * k * n, "ofmap": 0}
        writes = {"ofmap": m * n}
    elif geo.dataflow == "ws":
        reads = {"ifmap": geo.col_folds * m * k, "filter": k * n, "ofmap": (geo.row_folds - 1) * m * n}
        writes = {"ofmap": geo.row_folds * m * n}
    else:
        reads = {"ifmap": m * k, "filter": geo.col_folds * k * n, "ofmap": (geo.row_folds - 1) * m * n}
        writes = {"ofmap": geo.row_folds * m * n}
    return reads, writes


# --------------------------------------------------------------------------------------------
# Fast path: closed forms and one pass over folds
# --------------------------------------------------------------------------------------------

def _dram_per_fold_fast(geo: FoldGeometry, tiles: dict[str, Any], buf: _Buffers, word_bytes: int
                        ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Bytes loaded before and written after each fold (fold order), and per-operand totals."""
    words = tiles["words"]
    fc_n, fr_n = words["ifmap"].shape
    first_round = np.zeros((fc_n, fr_n), dtype=bool)
    first_round[0, :] = True
    first_in_hold = np.zeros((fc_n, fr_n), dtype=bool)
    first_in_hold[:, 0] = True
    last_in_hold = np.zeros((fc_n, fr_n), dtype=bool)
    last_in_hold[:, -1] = True

    def cycled(w: np.ndarray, cap: int) -> np.ndarray:
        """Inner loop walks distinct tiles; outer rounds re-walk them. Keep the first cap bytes."""
        tile_bytes = w[0] * word_bytes
        before = np.concatenate(([0], np.cumsum(tile_bytes)[:-1]))
        resident = np.clip(cap - before, 0, tile_bytes)
        later = tile_bytes - resident
        return np.where(first_round, w * word_bytes, later[None, :])

    def held_in(w: np.ndarray, cap: int) -> np.ndarray:
        tile_bytes = w * word_bytes
        return np.where(first_in_hold, tile_bytes, np.maximum(0, tile_bytes - cap))

    load = {"ifmap": None, "filter": None}
    ofmap_read = np.zeros((fc_n, fr_n), dtype=words["ofmap"].dtype)
    o_bytes = words["ofmap"] * word_bytes
    if geo.dataflow == "os":
        load["ifmap"] = cycled(words["ifmap"], buf.ifmap)
        load["filter"] = held_in(words["filter"], buf.filter)
        ofmap_write = o_bytes
    else:
        spill = np.maximum(0, o_bytes - buf.ofmap)
        ofmap_write = np.where(last_in_hold, o_bytes, spill)
        ofmap_read = np.where(first_in_hold, 0, spill)
        if geo.dataflow == "ws":
            load["ifmap"] = cycled(words["ifmap"], buf.ifmap)
            load["filter"] = words["filter"] * word_bytes
        else:
            load["ifmap"] = words["ifmap"] * word_bytes
            filt_t = words["filter"]
            load["filter"] = cycled(filt_t, buf.filter)
    totals = {"ifmap": int(load["ifmap"].sum()), "filter": int(load["filter"].sum()),
              "ofmap": int(ofmap_write.sum() + ofmap_read.sum())}
    fold_in = (load["ifmap"] + load["filter"] + ofmap_read).reshape(-1)
    fold_out = ofmap_write.reshape(-1)
    totals["ofmap_write"] = int(ofmap_write.sum())
    totals["ofmap_read"] = int(ofmap_read.sum())
    return fold_in, fold_out, totals


def _ticks(bw: float) -> tuple[int, int]:
    """Exact integer time base for a bandwidth of ``bw`` bytes per cycle.

    With ``bw = p / q`` (the float's exact rational value) one cycle is ``p`` ticks and one byte
    takes ``q`` ticks, so transfers that share a cycle are timed exactly, with no rounding.
    """
    ratio = Fraction(bw)
    return ratio.numerator, ratio.denominator


def _schedule_per_fold(fold_in: np.ndarray, fold_out: np.ndarray, cycles_per_fold: int, bw: float
                       ) -> tuple[int, int, int]:
    """(prefetch, stall, drain) cycles of the double-buffered fold pipeline; one pass over folds.

    The plain recurrence; ``_schedule_fast`` computes the same numbers with runs compressed.
    """
    per_cycle, per_byte = _ticks(bw)
    t_in = (np.asarray(fold_in, dtype=object) * per_byte).tolist()
    t_out = (np.asarray(fold_out, dtype=object) * per_byte).tolist()
    c = cycles_per_fold * per_cycle
    folds = len(t_in)
    prefetch = -(-t_in[0] // per_cycle)
    channel = 0  # tick at which the DRAM channel is next free (tick 0 = fold 0 starts)
    start = 0  # ticks, always a whole cycle
    stall = 0
    drain = 0
    for j in range(folds):
        end = start + c
        load_done = 0
        if j + 1 < folds:
            channel = max(channel, start) + t_in[j + 1]
            load_done = channel
        channel = max(channel, end) + t_out[j]
        if j + 1 < folds:
            nxt = max(end, -(-load_done // per_cycle) * per_cycle)  # a fold starts on a cycle boundary
            stall += nxt - end
            start = nxt
        else:
            drain = -(-channel // per_cycle) - end // per_cycle
    return prefetch, stall // per_cycle, drain


def _runs(fold_in: np.ndarray, fold_out: np.ndarray) -> list[tuple[int, int, int]]:
    """Run-length encoding of the pipeline steps: (load bytes of fold j+1, write bytes of fold j, count)."""
    a = np.asarray(fold_in)[1:]  # int64 or exact Python ints (object), whichever the counts needed
    b = np.asarray(fold_out)[:-1]
    if len(a) == 0:
        return []
    change = np.flatnonzero((a[1:] != a[:-1]) | (b[1:] != b[:-1])) + 1
    starts = np.concatenate(([0], change))
    counts = np.diff(np.concatenate((starts, [len(a)])))
    return list(zip(a[starts].tolist(), b[starts].tolist(), counts.tolist()))


def _schedule_fast(fold_in: np.ndarray, fold_out: np.ndarray, cycles_per_fold: int, bw: float
                   ) -> tuple[int, int, int]:
    """The fold pipeline of ``_schedule_per_fold``, computed over runs of identical folds.

    The only state carried from fold to fold is ``d``, how far past the fold's start the DRAM
    channel is still busy. Within a run of identical steps, ``d`` soon repeats (after one
    bandwidth-bound step it lies within one cycle of the write-back time); from the first repeat
    on, the run is periodic, so whole periods are skipped with their stall added at once. Exact:
    the same integer tick arithmetic as the per-fold loop. Runs that recur with the same
    incoming state (every outer fold repeats the inner loop's runs) are looked up, not rerun.
    """
    per_cycle, per_byte = _ticks(bw)
    c = cycles_per_fold * per_cycle
    prefetch = -(-int(fold_in[0]) * per_byte // per_cycle)
    d = 0  # channel busy time relative to the current fold's start, in ticks
    stall = 0
    memo: dict[tuple[int, int, int, int], tuple[int, int]] = {}  # outer folds repeat the same runs
    for load_bytes, write_bytes, count in _runs(fold_in, fold_out):
        key = (load_bytes, write_bytes, count, d)
        if key in memo:
            d, run_stall = memo[key]
            stall += run_stall
            continue
        stall_before = stall
        t_in, t_out = load_bytes * per_byte, write_bytes * per_byte
        seen: dict[int, tuple[int, int]] | None = {}
        k = 0
        while k < count:
            if seen is not None:
                if d in seen:
                    k0, stall0 = seen[d]
                    period, periods = k - k0, (count - k) // (k - k0)
                    stall += periods * (stall - stall0)
                    k += periods * period
                    seen = None
                    continue
                seen[d] = (k, stall)
            load_done = max(d, 0) + t_in
            channel = max(load_done, c) + t_out
            nxt = max(c, -(-load_done // per_cycle) * per_cycle)
            stall += nxt - c
            d = channel - nxt
            k += 1
        memo[key] = (d, stall - stall_before)
    channel = max(d, 0, c) + int(fold_out[-1]) * per_byte
    drain = -(-channel // per_cycle) - cycles_per_fold
    return prefetch, stall // per_cycle, drain


def _assemble(shape: GemmShape, hw: SystolicAccelerator, geo: FoldGeometry, compute_cycles: int,
              mapping_efficiency: float, reads: dict[str, int], writes_array: dict[str, int],
              dram: dict[str, int], prefetch: int, stall: int, drain: int, tile_exceeds_buffer: bool
              ) -> dict[str, Any]:
    """One result row; counts for a batch multiply (batched GEMMs run as independent layers)."""
    b = shape.batch
    wb = hw.word_bytes
    macs = shape.m * shape.k * shape.n * b
    compute = compute_cycles * b
    busy = (compute_cycles + 1) * b  # SCALE-Sim's count is the index of the last busy cycle
    stall_total = stall * b
    total = compute + stall_total
    pe = hw.array.rows * hw.array.cols
    sram_reads = {op: reads[op] * b for op in OPERANDS}
    sram_writes = {
        "ifmap": dram["ifmap"] // wb * b,
        "filter": dram["filter"] // wb * b,
        "ofmap": writes_array["ofmap"] * b,
    }
    dram_bytes = {op: dram[op] * b for op in OPERANDS}
    dram_read = (dram["ifmap"] + dram["filter"] + dram["ofmap_read"]) * b
    dram_write = dram["ofmap_write"] * b
    compulsory = {"ifmap": dram["compulsory_ifmap"] * b, "filter": shape.k * shape.n * wb * b,
                  "ofmap": shape.m * shape.n * wb * b}
    row: dict[str, Any] = {
        "dataflow": geo.dataflow,
        "array_rows": hw.array.rows,
        "array_cols": hw.array.cols,
        "m": shape.m, "k": shape.k, "n": shape.n, "batch": b,
        "macs": macs,
        "folds": geo.folds * b,
        "row_folds": geo.row_folds,
        "col_folds": geo.col_folds,
        "cycles_per_fold": geo.cycles_per_fold,
        "compute_cycles": compute,
        "busy_cycles": busy,
        "stall_cycles": stall_total,
        "total_cycles": total,
        "prefetch_cycles": prefetch * b,
        "drain_cycles": drain * b,
        "end_to_end_cycles": busy + stall_total + (prefetch + drain) * b,
        "total_s": (busy + stall_total) / hw.clock_hz,
        "overall_utilization": macs / ((busy + stall_total) * pe),
        "compute_utilization": macs / (busy * pe),
        "mapping_efficiency": mapping_efficiency,
        "sram_reads": sram_reads,
        "sram_writes": sram_writes,
        "dram_bytes": dram_bytes,
        "compulsory_dram_bytes": compulsory,
        "dram_read_bytes": dram_read,
        "dram_write_bytes": dram_write,
        "tile_exceeds_buffer": tile_exceeds_buffer,
    }
    energy = _energy_pj(hw, macs, sram_reads, sram_writes, dram_read, dram_write)
    if energy is not None:
        row["energy_pj"] = energy
    return row


def _energy_pj(hw: SystolicAccelerator, macs: int, sram_reads: dict[str, int], sram_writes: dict[str, int],
               dram_read: int, dram_write: int) -> float | None:
    """MAC + SRAM + DRAM energy from the spec's per-access numbers; None when the spec has none."""
    coeffs = (hw.mac_energy_pj, hw.sram_read_energy_pj_per_byte, hw.sram_write_energy_pj_per_byte,
              hw.dram.read_energy_pj_per_byte, hw.dram.write_energy_pj_per_byte)
    if not any(coeffs):
        return None
    wb = hw.word_bytes
    return (macs * hw.mac_energy_pj
            + sum(sram_reads.values()) * wb * hw.sram_read_energy_pj_per_byte
            + sum(sram_writes.values()) * wb * hw.sram_write_energy_pj_per_byte
            + dram_read * hw.dram.read_energy_pj_per_byte
            + dram_write * hw.dram.write_energy_pj_per_byte)


def simulate_gemm(shape: GemmShape, hw: SystolicAccelerator, *, ifmap_words: int | None = None) -> dict[str, Any]:
    """Simulate one (batched) GEMM on a systolic accelerator: the fast path.

    ``ifmap_words`` is the number of distinct ifmap words per batch element (a convolution's
    input footprint, smaller than the im2col matrix's M*K); it defaults to M*K.
    Returns a row of unit-suffixed fields (see ``accelsim.engines.systolic`` docs).
    """
    geo = _geometry(shape, hw)
    ifmap_words = shape.m * shape.k if ifmap_words is None else int(ifmap_words)
    if ifmap_words <= 0:
        raise AccelsimError(f"must be positive, got {ifmap_words}", field="ifmap_words")
    sr, sc, _ = geo.spatial_temporal
    compute_cycles = geo.folds * geo.cycles_per_fold - 1
    mapping_efficiency = (sr * sc) / (geo.folds * geo.rows * geo.cols)
    reads, writes = _sram_counts(geo)
    buf = _Buffers.of(hw)
    dtype = _count_dtype(geo, ifmap_words, hw.word_bytes, (buf.ifmap, buf.filter, buf.ofmap))
    tiles = _tile_words(geo, ifmap_words, dtype)
    fold_in, fold_out, dram = _dram_per_fold_fast(geo, tiles, buf, hw.word_bytes)
    dram["compulsory_ifmap"] = ifmap_words * hw.word_bytes
    prefetch, stall, drain = _schedule_fast(fold_in, fold_out, geo.cycles_per_fold, hw.dram_bytes_per_cycle)
    return _assemble(shape, hw, geo, compute_cycles, mapping_efficiency, reads, writes, dram,
                     prefetch, stall, drain, _tile_exceeds_buffer(tiles, buf, hw.word_bytes))


# --------------------------------------------------------------------------------------------
# Slow reference path: explicit demand, stepped cycle by cycle
# --------------------------------------------------------------------------------------------

PAD = -2  # a demand slot the schedule occupies with no data (an unused lane of a partial fold)


def _fold_demand(geo: FoldGeometry, fr: int, fc: int) -> dict[str, np.ndarray]:
    """The fold's demand on the array edges, cycle by cycle: element ids, -1 idle, ``PAD`` padding.

    Built from the dataflow's definition, independently of the closed forms (its length is not
    given, it is one past the last scheduled slot): the stationary operand is loaded (ws/is: one
    PE row per cycle), the streamed operands enter skewed by one cycle per lane, and outputs leave
    skewed over the columns. Every lane of the array keeps its slot in the skew even when a
    partial fold leaves it unused (``PAD``: scheduled, no data), as in SCALE-Sim, whose demand
    matrices are padded to the full array; a fold therefore holds the array for the full skew.
    The os output slots follow SCALE-Sim's demand (bottom PE row first, starting when the first
    column's last product enters), which fixes when writes are issued, not their number.
    Ids: ifmap ``i*K + k``, filter ``k*N + j``, ofmap ``i*N + j``.
    """
    k, n, R, C = geo.k, geo.n, geo.rows, geo.cols
    sr, sc, t = geo.spatial_temporal
    r0, c0 = fr * R, fc * C
    ur, uc = geo.used(fr, sr, R), geo.used(fc, sc, C)
    left: list[tuple[int, int, int]] = []  # (cycle, lane, id): ifmap (os, ws) or filter (is) entering rows
    top: list[tuple[int, int, int]] = []   # filter (os) / stationary preload (ws, is) entering columns
    out: list[tuple[int, int, int]] = []   # outputs leaving the columns
    if geo.dataflow == "os":
        for lane in range(R):  # row lane = output row i, streams ifmap[i, 0..K)
            for step in range(t):
                left.append((lane + step, lane, (r0 + lane) * k + step if lane < ur else PAD))
        for lane in range(C):  # column lane = output column j, streams filter[0..K, j]
            for step in range(t):
                top.append((lane + step, lane, step * n + (c0 + lane) if lane < uc else PAD))
        # after the last product, outputs shift out of the bottom edge (bottom PE row first),
        # one row per cycle, skewed by one cycle per column
        for lane in range(C):
            for slot in range(R):
                row_i = R - 1 - slot  # flipped: bottom PE row leaves first
                used = row_i < ur and lane < uc
                out.append((t - 1 + slot + lane, lane, (r0 + row_i) * n + (c0 + lane) if used else PAD))
        return _demand_arrays({"ifmap": (left, R), "filter": (top, C), "ofmap": (out, C)})
    # ws / is: preload the stationary block through the columns (one row per cycle, flipped),
    # then stream T vectors skewed over the rows, outputs leave skewed over the columns.
    for slot in range(R):
        row_i = R - 1 - slot
        for lane in range(C):
            kk = r0 + row_i
            if row_i >= ur or lane >= uc:
                ident = PAD
            elif geo.dataflow == "ws":
                ident = kk * n + (c0 + lane)          # filter[k, j]
            else:
                ident = (c0 + lane) * k + kk          # ifmap[i, k] (im2col row i)
            top.append((slot, lane, ident))
    for lane in range(R):
        kk = r0 + lane
        for step in range(t):
            if lane >= ur:
                ident = PAD
            elif geo.dataflow == "ws":
                ident = step * k + kk                  # ifmap[i=step, k]
            else:
                ident = kk * n + step                  # filter[k, j=step]
            left.append((R + lane + step, lane, ident))
    for lane in range(C):
        for step in range(t):
            if lane >= uc:
                ident = PAD
            elif geo.dataflow == "ws":
                ident = step * n + (c0 + lane)        # ofmap[i=step, j]
            else:
                ident = (c0 + lane) * n + step        # ofmap[i, j=step]
            out.append((2 * R - 1 + step + lane, lane, ident))
    if geo.dataflow == "ws":
        return _demand_arrays({"ifmap": (left, R), "filter": (top, C), "ofmap": (out, C)})
    return _demand_arrays({"ifmap": (top, C), "filter": (left, R), "ofmap": (out, C)})


def _demand_arrays(events: dict[str, tuple[list[tuple[int, int, int]], int]]) -> dict[str, np.ndarray]:
    """Scheduled slots as ``[cycle, lane]`` arrays, all as long as the fold: last slot + 1."""
    length = 1 + max(cycle for slots, _ in events.values() for cycle, _, _ in slots)
    arrays = {}
    for op, (slots, lanes) in events.items():
        grid = np.full((length, lanes), -1, dtype=np.int64)
        for cycle, lane, ident in slots:
            assert grid[cycle, lane] == -1, "two values on one lane in one cycle"
            grid[cycle, lane] = ident
        arrays[op] = grid
    return arrays


def _dram_reference(geo: FoldGeometry, tiles: dict[str, Any], buf: _Buffers, word_bytes: int
                    ) -> tuple[list[int], list[int], dict[str, int]]:
    """Explicit tile-residency state machine, fold by fold (the policy of the module docstring).

    Inputs: a tile that will be used again keeps ``min(size, free space)`` bytes resident after
    use, where free space excludes other live resident tiles; a tile's last use frees it. The
    ofmap keeps ``min(size, B)`` bytes of a partial-sum tile and spills the rest, reading it back
    at the tile's next use; the final use writes the whole tile.
    """
    fc_n, fr_n = tiles["words"]["ifmap"].shape
    order = [(fc, fr) for fc in range(fc_n) for fr in range(fr_n)]
    caps = {"ifmap": buf.ifmap, "filter": buf.filter, "ofmap": buf.ofmap}
    fold_in = [0] * len(order)
    fold_out = [0] * len(order)
    totals = {"ifmap": 0, "filter": 0, "ofmap_read": 0, "ofmap_write": 0}
    for op in ("ifmap", "filter"):
        keys = [int(tiles["keys"][op][fc, fr]) for fc, fr in order]
        sizes = [int(tiles["words"][op][fc, fr]) * word_bytes for fc, fr in order]
        last_use = {key: i for i, key in enumerate(keys)}
        resident: dict[int, int] = {}
        for i, (key, size) in enumerate(zip(keys, sizes)):
            fetched = size - resident.get(key, 0)
            fold_in[i] += fetched
            totals[op] += fetched
            if last_use[key] == i:
                resident.pop(key, None)
            else:
                others = sum(v for kk, v in resident.items() if kk != key)
                resident[key] = min(size, max(0, caps[op] - others))
    keys = [int(tiles["keys"]["ofmap"][fc, fr]) for fc, fr in order]
    sizes = [int(tiles["words"]["ofmap"][fc, fr]) * word_bytes for fc, fr in order]
    last_use = {key: i for i, key in enumerate(keys)}
    spilled: dict[int, int] = {}
    for i, (key, size) in enumerate(zip(keys, sizes)):
        back = spilled.pop(key, 0)
        fold_in[i] += back
        totals["ofmap_read"] += back
        if last_use[key] == i:
            fold_out[i] += size
            totals["ofmap_write"] += size
        else:
            spill = size - min(size, caps["ofmap"])
            spilled[key] = spill
            fold_out[i] += spill
            totals["ofmap_write"] += spill
    totals["ofmap"] = totals["ofmap_read"] + totals["ofmap_write"]
    return fold_in, fold_out, totals


def _schedule_reference(fold_in: list[int], fold_out: list[int], fold_cycles: list[int], bw: float
                        ) -> tuple[int, int, int]:
    """Step the array and the DRAM channel one cycle at a time; returns (prefetch, stall, drain).

    Channel jobs, in order: load of fold j+1 (ready once fold j has started), write-back of fold j
    (ready once fold j has ended). Within a cycle the channel moves up to ``bw`` bytes, finishing
    one job and starting the next in the same cycle if it is ready. A fold starts at the first
    cycle boundary at which its load is complete and the previous fold has finished.
    """
    per_cycle, per_byte = _ticks(bw)
    folds = len(fold_in)
    jobs: list[tuple[str, int, int]] = []
    for j in range(folds):
        if j + 1 < folds:
            jobs.append(("load", j + 1, fold_in[j + 1]))
        jobs.append(("write", j, fold_out[j]))
    prefetch = -(-fold_in[0] * per_byte // per_cycle)
    loaded_at = {0: 0}  # fold -> tick its load completed
    started: dict[int, int] = {}  # fold -> cycle
    ended: dict[int, int] = {}
    job_i, channel_tick, last_write_tick = 0, 0, 0
    fold, progress, stall, t = 0, 0, 0, 0
    while fold < folds or job_i < len(jobs):
        progressed = True
        while progressed:  # settle what happens at the boundary of cycle t
            progressed = False
            if fold < folds and fold not in started and loaded_at.get(fold, math.inf) <= t * per_cycle:
                started[fold] = t
                progressed = True
            # the channel serves ready jobs for the rest of this cycle's capacity
            while job_i < len(jobs) and channel_tick < (t + 1) * per_cycle:
                kind, jf, nbytes = jobs[job_i]
                ready = started.get(jf - 1) if kind == "load" else ended.get(jf)
                if ready is None or ready > t:
                    break
                channel_tick = max(channel_tick, ready * per_cycle) + nbytes * per_byte
                if kind == "load":
                    loaded_at[jf] = channel_tick
                else:
                    last_write_tick = channel_tick
                job_i += 1
                progressed = True
        if fold < folds:
            if fold in started:
                progress += 1
                if progress == fold_cycles[fold]:
                    ended[fold] = t + 1
                    fold, progress = fold + 1, 0
            else:
                stall += 1
        t += 1
    drain = -(-last_write_tick // per_cycle) - ended[folds - 1]
    return prefetch, stall, drain


def simulate_gemm_reference(shape: GemmShape, hw: SystolicAccelerator, *, ifmap_words: int | None = None
                            ) -> dict[str, Any]:
    """The slow reference: build every fold's demand explicitly and step it cycle by cycle.

    It counts SRAM accesses from the demand entries, mapping efficiency from the PEs each fold
    occupies, DRAM bytes from an explicit tile-residency state machine and stalls from a
    cycle-stepped DRAM channel. Only for small shapes (tests); ``simulate_gemm`` must agree
    with it exactly.
    """
    geo = _geometry(shape, hw)
    ifmap_words = shape.m * shape.k if ifmap_words is None else int(ifmap_words)
    reads = {"ifmap": 0, "filter": 0, "ofmap": 0}
    writes = {"ofmap": 0}
    fold_cycles: list[int] = []  # each fold's length, read off its demand schedule
    efficiency = Fraction(0)
    pe = geo.rows * geo.cols
    for fc in range(geo.col_folds):
        for fr in range(geo.row_folds):
            demand = _fold_demand(geo, fr, fc)
            fold_cycles.append(len(demand["ofmap"]))
            for cycle in range(fold_cycles[-1]):  # step the fold one cycle at a time
                for op in ("ifmap", "filter"):
                    reads[op] += int(np.count_nonzero(demand[op][cycle] >= 0))
                outs = int(np.count_nonzero(demand["ofmap"][cycle] >= 0))
                writes["ofmap"] += outs
                if geo.dataflow != "os" and fr > 0:
                    reads["ofmap"] += outs  # accumulate onto the partial sum of the previous row fold
            if geo.dataflow == "os":
                rows_busy = int(np.count_nonzero((demand["ifmap"] >= 0).any(axis=0)))
                cols_busy = int(np.count_nonzero((demand["filter"] >= 0).any(axis=0)))
                busy = rows_busy * cols_busy
            else:
                stationary = "filter" if geo.dataflow == "ws" else "ifmap"
                busy = int(np.count_nonzero(demand[stationary][: geo.rows] >= 0))
            efficiency += Fraction(busy, pe)
    compute_cycles = sum(fold_cycles) - 1  # SCALE-Sim reports the index of the last cycle
    if set(fold_cycles) != {geo.cycles_per_fold}:  # the result row and the fast path assume one length
        raise AssertionError(f"demand fold lengths {sorted(set(fold_cycles))} disagree with the closed form "
                             f"{geo.cycles_per_fold}")
    mapping_efficiency = float(efficiency / geo.folds)
    tiles = _tile_words(geo, ifmap_words)
    fold_in, fold_out, dram = _dram_reference(geo, tiles, _Buffers.of(hw), hw.word_bytes)
    dram["compulsory_ifmap"] = ifmap_words * hw.word_bytes
    prefetch, stall, drain = _schedule_reference(fold_in, fold_out, fold_cycles, hw.dram_bytes_per_cycle)
    return _assemble(shape, hw, geo, compute_cycles, mapping_efficiency, reads, writes, dram,
                     prefetch, stall, drain, _tile_exceeds_buffer(tiles, _Buffers.of(hw), hw.word_bytes))


# --------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------

SUMMED_FIELDS: tuple[str, ...] = (
    "macs", "folds", "compute_cycles", "busy_cycles", "stall_cycles", "total_cycles", "prefetch_cycles", "drain_cycles",
    "end_to_end_cycles", "total_s", "dram_read_bytes", "dram_write_bytes", "energy_pj",
)
SUMMED_PER_OPERAND: tuple[str, ...] = ("sram_reads", "sram_writes", "dram_bytes", "compulsory_dram_bytes")


def ifmap_footprint_words(einsum: Einsum, shape: GemmShape) -> int:
    """Distinct ifmap words one batch element reads: the tensor itself, at most the im2col M*K.

    For a GEMM this is M*K; for a convolution the input tensor is smaller than its im2col matrix
    because neighbouring windows overlap.
    """
    ifmap = next(o.tensor for o in einsum.inputs if o.tensor.name == shape.ifmap)
    return max(1, min(shape.m * shape.k, ifmap.elements // shape.batch))


def totals_of(rows: list[dict[str, Any]], hw: SystolicAccelerator) -> dict[str, Any]:
    """Sum the additive fields; utilization from the sums; mapping efficiency averaged over folds."""
    totals: dict[str, Any] = {"layers": len(rows)}
    for key in SUMMED_FIELDS:
        if any(key in r for r in rows):
            totals[key] = sum(r.get(key, 0) for r in rows)
    for key in SUMMED_PER_OPERAND:
        totals[key] = {op: sum(r[key][op] for r in rows) for op in OPERANDS}
    pe = hw.array.rows * hw.array.cols
    busy, stall = totals["busy_cycles"], totals["stall_cycles"]
    totals["overall_utilization"] = totals["macs"] / ((busy + stall) * pe)
    totals["compute_utilization"] = totals["macs"] / (busy * pe)
    folds = totals.get("folds", 0)
    totals["mapping_efficiency"] = (sum(r["mapping_efficiency"] * r["folds"] for r in rows) / folds
                                    if folds else 0.0)
    return totals


def simulate_graph(graph: Graph, hw: SystolicAccelerator) -> Report:
    """Simulate every two-input multiply-accumulate Einsum of ``graph`` on the array, in schedule order.

    Each such Einsum runs as its GEMM view (``Einsum.as_gemm``; a batch runs as that many GEMMs).
    Other Einsums (softmax pieces, norms, element-wise ops) do not map onto a MAC array; they are
    listed in ``meta['not_mapped']`` with the reason and contribute no cycles.
    """
    if not isinstance(hw, SystolicAccelerator):
        raise AccelsimError(f"needs a systolic accelerator, got kind {getattr(hw, 'kind', type(hw).__name__)!r}",
                            field="hardware", allowed="kind: systolic")
    layers: list[GemmLayer] = []
    not_mapped: list[dict[str, str]] = []
    for einsum in graph.topological_order():
        if einsum.op is not OpKind.MAC or len(einsum.inputs) != 2:
            not_mapped.append({"einsum": einsum.name, "op": einsum.op.value,
                               "reason": "not a two-input multiply-accumulate; no systolic mapping"})
            continue
        shape = einsum.as_gemm()
        layers.append(GemmLayer(einsum.name, shape, ifmap_footprint_words(einsum, shape)))
    if not layers:
        raise AccelsimError("has no two-input multiply-accumulate einsum to run on a systolic array",
                            field=f"graph {graph.name}")
    return simulate_layers(layers, hw, workload=graph.name, meta={"not_mapped": not_mapped})


@dataclass(frozen=True)
class GemmLayer:
    """A named GEMM with its ifmap footprint (distinct words per batch element; None means M*K)."""

    name: str
    shape: GemmShape
    ifmap_words: int | None = None


def simulate_layers(layers: list[GemmLayer], hw: SystolicAccelerator, *, workload: str = "layers",
                    meta: dict[str, Any] | None = None) -> Report:
    """Simulate GEMM layers one after another (SCALE-Sim's topology semantics) into a Report."""
    rows: list[dict[str, Any]] = []
    for layer in layers:
        shape = layer.shape
        row = {"layer": layer.name, "ifmap_tensor": shape.ifmap, "filter_tensor": shape.filter,
               "ofmap_tensor": shape.ofmap}
        try:
            row.update(simulate_gemm(shape, hw, ifmap_words=layer.ifmap_words))
        except AccelsimError as error:  # name the layer: a topology may have hundreds
            raise AccelsimError(error.detail, field=f"layer {layer.name}: {error.field}", allowed=error.allowed,
                                source=error.source) from None
        rows.append(row)
    info = {"engine": "systolic", "dataflow": hw.array.dataflow, **(meta or {})}
    oversized = [r["layer"] for r in rows if r["tile_exceeds_buffer"]]
    if oversized:
        info["tile_exceeds_buffer"] = oversized
        info["note"] = ("in the listed layers one fold's tile exceeds half its SRAM; the model still loads the "
                        "whole tile before the fold starts, so their stall cycles are approximate (optimistic)")
    return Report(workload=workload, hardware=hw.name, layers=rows, totals=totals_of(rows, hw), meta=info)
