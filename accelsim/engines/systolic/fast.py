"""The fast path: closed forms, numpy over the fold grid, and the pipeline recurrence over runs of
identical folds (see ``accelsim.engines.systolic``)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from accelsim.engines.systolic.geometry import (
    OPERANDS,
    FoldGeometry,
    _Buffers,
    _count_dtype,
    _geometry,
    _sram_counts,
    _tile_exceeds_buffer,
    _tile_words,
)
from accelsim.errors import AccelsimError
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape

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
