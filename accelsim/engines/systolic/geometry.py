"""How a GEMM folds onto the array, per-operand tile words, SRAM counts and buffer halves: shared by
the fast and the reference paths (see ``accelsim.engines.systolic`` for the model)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import DATAFLOWS, SystolicAccelerator
from accelsim.ir import GemmShape

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
