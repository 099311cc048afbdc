"""Time one GEMV on a PIM device by simulating a representative channel's command stream.

All channels hold the same share of the matrix (``mappers.pim.map_gemv`` deals neurons evenly)
and run the same stream, and channels share no timing rule, so one channel's cycles are the
device's. Long streams are periodic (rows of equal length, refresh every tREFI): a prefix of
``SIM_ROWS`` rows is simulated exactly and the rest extrapolated with the per-row cost measured
over the prefix's second half (which spans several refresh intervals); ``tests/test_pim_sim.py``
checks the extrapolation against full simulation.
"""
from __future__ import annotations

import math
from functools import lru_cache

from accelsim.engines.pim.channel_sim import simulate_channel

SIM_ROWS = 256


def gemv_requests(rows: int, columns: int, columns_per_row: int, vectors: int) -> list:
    """All-bank MAC requests: each open row's columns, each column once per input vector."""
    out = []
    left = columns
    for row in range(rows):
        n = min(columns_per_row, left)
        left -= n
        req = ("MACAB", (0, -1, -1, -1, -1, row))
        out.extend([req] * (n * vectors))
    return out


@lru_cache(maxsize=4096)
def gemv_cycles(rows: int, columns: int, columns_per_row: int, vectors: int, timings_key: tuple,
                org_key: tuple, exact: bool = False) -> tuple[float, float]:
    """(cycles, row-hit rate) of one channel streaming ``rows`` rows."""
    timings, org = dict(timings_key), dict(org_key)
    if exact or rows <= SIM_ROWS:
        res = simulate_channel(gemv_requests(rows, columns, columns_per_row, vectors), timings, org)
        return float(res.cycles), res.row_hit_rate
    full = simulate_channel(gemv_requests(SIM_ROWS, SIM_ROWS * columns_per_row, columns_per_row, vectors),
                            timings, org)
    half = simulate_channel(gemv_requests(SIM_ROWS // 2, SIM_ROWS // 2 * columns_per_row, columns_per_row, vectors),
                            timings, org)
    per_row = (full.cycles - half.cycles) / (SIM_ROWS - SIM_ROWS // 2)
    tail_cols = columns - (rows - 1) * columns_per_row  # the last row may be partial
    cycles = full.cycles + (rows - SIM_ROWS - 1) * per_row + per_row * tail_cols / columns_per_row
    hits = 1.0 - rows / (columns * vectors)
    return float(math.ceil(cycles)), hits
