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
    size = lambda n: 1 << int(n).bit_length()  # noqa: E731
    return _table(size(a.max()), size(b.max()), stride, dilation)[a, b]


def footprint_elements(tile, ranks: frozenset[str], windows: tuple[Window, ...]) -> int:
    """Elements of a tensor indexed by ``ranks`` (some of them through ``windows``) in ``tile``."""
    inside = {w.out_rank for w in windows} | {w.filter_rank for w in windows}
    plain = math.prod(tile[r] for r in ranks if r not in inside)
    return plain * math.prod(window_rows(tile[w.out_rank], tile[w.filter_rank], w.stride, w.dilation)
                             for w in windows)
