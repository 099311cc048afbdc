"""The slow reference path: explicit demand on the array edges, stepped cycle by cycle, for small
shapes and tests (see ``accelsim.engines.systolic``); property tests prove it equals the fast path."""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from accelsim.engines.systolic.fast import _assemble, _ticks
from accelsim.engines.systolic.geometry import (
    FoldGeometry,
    _Buffers,
    _geometry,
    _tile_exceeds_buffer,
    _tile_words,
)
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape

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
