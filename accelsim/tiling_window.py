"""Sliding windows: how many input elements a tile of a convolution touches.

Why its own module: the loop problem (``accelsim.tiling``), the loop-nest engine and the tiling
mapper's vectorised search all need the same count, and it is the one place where a
convolution's input differs from a GEMM operand (whose tile is a product of rank extents).

An input row index is ``p * stride + r * dilation`` (output row ``p``, filter row ``r``). A tile
of ``a`` output rows and ``b`` filter rows at any offset touches the rows
``{i * stride + j * dilation : 0 <= i < a, 0 <= j < b}`` shifted by a constant, so its size
does not depend on where the tile sits. When the rows are contiguous (stride 1, or the window
covering the stride) that is the sliding-window extent ``(a - 1) * stride + (b - 1) * dilation + 1``;
with gaps (a 1x1 filter at stride 2 reads every other row) it is fewer, and counting the
distinct rows keeps "compulsory" equal to the elements some window really touches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True)
class Window:
    """One sliding-window index ``out_rank * stride + filter_rank * dilation`` of an input."""

    out_rank: str
    filter_rank: str
    stride: int = 1
    dilation: int = 1
    pad: int = 0  # rows of zero padding before the input: coordinate p*stride + r*dilation - pad
    size: int | None = None  # input rows (None: every coordinate is an element, no padding)

    def clips(self) -> bool:
        return self.pad > 0 or self.size is not None


@cache
def window_rows(a: int, b: int, stride: int, dilation: int) -> int:
    """Distinct input rows that ``a`` output rows times ``b`` filter rows touch."""
    if a <= 0 or b <= 0:
        return 0
    if (dilation == 1 and b >= stride) or (stride == 1 and a >= dilation):
        # contiguous: the filter taps (or the output rows) fill every gap of the other's step
        return (a - 1) * stride + (b - 1) * dilation + 1
    return len({i * stride + j * dilation for i in range(a) for j in range(b)})


@cache
def _table(a_max: int, b_max: int, stride: int, dilation: int) -> np.ndarray:
    """``window_rows`` for every ``a <= a_max``, ``b <= b_max`` (read-only: it is cached)."""
    out = np.array([[window_rows(a, b, stride, dilation) for b in range(b_max + 1)] for a in range(a_max + 1)],
                   dtype=np.int64)
    out.setflags(write=False)
    return out


def window_rows_array(a: np.ndarray, b: np.ndarray, stride: int, dilation: int) -> np.ndarray:
    """``window_rows`` over arrays of tile extents, by a table lookup (the search calls it per node)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.int64)
    # tables sized to powers of two so that the search's tiles (divisors of fixed extents) share one
    size = lambda n: 1 << int(n).bit_length()
    return _table(size(a.max()), size(b.max()), stride, dilation)[a, b]


@cache
def _rows_at(a: int, b: int, start: int, w: Window) -> int:
    """Input rows (inside ``[0, size)``) of a tile of ``a`` x ``b`` whose first coordinate is ``start``."""
    lo, hi = 0, (w.size if w.size is not None else 1 << 62)
    if (w.dilation == 1 and b >= w.stride) or (w.stride == 1 and a >= w.dilation):
        end = start + (a - 1) * w.stride + (b - 1) * w.dilation + 1
        return max(0, min(end, hi) - max(start, lo))
    return sum(1 for x in {start + i * w.stride + j * w.dilation for i in range(a) for j in range(b)} if lo <= x < hi)


@cache
def window_sum(a: int, b: int, extent_out: int, extent_filter: int, w: Window) -> int:
    """Rows touched, summed over every position of an ``a`` x ``b`` tile on the grid that tiles
    ``extent_out`` x ``extent_filter`` (``extent / tile`` positions per rank): a loop nest visits
    every position equally often, so this over the number of positions is the mean per visit."""
    if not w.clips():
        return (extent_out // a) * (extent_filter // b) * window_rows(a, b, w.stride, w.dilation)
    return sum(_rows_at(a, b, i * a * w.stride + j * b * w.dilation - w.pad, w)
               for i in range(extent_out // a) for j in range(extent_filter // b))


def window_sum_array(a: np.ndarray, b: np.ndarray, extent_out: int, extent_filter: int, w: Window) -> np.ndarray:
    """``window_sum`` over arrays of tile extents (divisors of the extents), by a table lookup."""
    table = _sum_table(extent_out, extent_filter, w)
    return table[np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)]


@cache
def _sum_table(extent_out: int, extent_filter: int, w: Window) -> np.ndarray:
    out = np.zeros((extent_out + 1, extent_filter + 1), dtype=np.int64)
    for a in range(1, extent_out + 1):
        if extent_out % a == 0:
            for b in range(1, extent_filter + 1):
                if extent_filter % b == 0:
                    out[a, b] = window_sum(a, b, extent_out, extent_filter, w)
    out.setflags(write=False)
    return out


def footprint_elements(tile, ranks: frozenset[str], windows: tuple[Window, ...]) -> int:
    """Elements of a tensor indexed by ``ranks`` (some of them through ``windows``) in ``tile``."""
    inside = {w.out_rank for w in windows} | {w.filter_rank for w in windows}
    plain = math.prod(tile[r] for r in ranks if r not in inside)
    return plain * math.prod(window_rows(tile[w.out_rank], tile[w.filter_rank], w.stride, w.dilation)
                             for w in windows)


def positions_and_sum(tile, extents, ranks: frozenset[str], windows: tuple[Window, ...]) -> tuple[int, int]:
    """(tile positions on the window ranks' grid, elements summed over those positions)."""
    inside = {w.out_rank for w in windows} | {w.filter_rank for w in windows}
    total = math.prod(tile[r] for r in ranks if r not in inside)
    count = 1
    for w in windows:
        a, b = tile[w.out_rank], tile[w.filter_rank]
        ea, eb = extents[w.out_rank], extents[w.filter_rank]
        count *= (ea // a) * (eb // b)
        total *= window_sum(a, b, ea, eb, w)
    return count, total
