"""Time one GEMV on a PIM device by simulating a representative channel's command stream.

All channels hold the same share of the matrix (``accelsim.engines.pim.layout.map_gemv`` deals neurons evenly)
and run the same stream, and channels share no timing rule, so one channel's cycles are the
device's. The command and address sequence per placement follows AttAcc's layouts
(trace_gen/gen_trace_attacc_{bank,bg,buffer}.py):
- bank / logic: all-bank MACs (MACAB), one row after another;
- bankgroup: same-bank MACs (MACSB) read one bank index in every bank group; a row's columns,
  then the next bank index, then the next row;
- buffer: per-bank MACs (MACPB, both pseudo-channels) rotate over the 8 (rank, bank group)
  pairs, then the 4 banks, then the columns, then the rows.
Long streams are periodic (one period = every bank through one row; refresh every tREFI): a
prefix is simulated exactly and the rest extrapolated with the per-command cost measured over
the prefix's second half, which spans several refresh intervals; ``tests/test_pim_sim.py``
checks the extrapolation against full simulation.
"""
from __future__ import annotations

import math
from functools import lru_cache

from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.errors import AccelsimError

SIM_COMMANDS = 12288  # prefix simulated exactly (at >= 4 periods)
BANK_SPREAD = {"bank": 1, "logic": 1, "bankgroup": 4, "buffer": 32}


def mac_request(level: str, idx: int, cpr: int) -> tuple:
    if level in ("bank", "logic"):
        return "MACAB", (0, -1, -1, -1, -1, idx // cpr)
    if level == "bankgroup":
        return "MACSB", (0, -1, -1, -1, (idx // cpr) % 4, idx // (4 * cpr))
    if level == "buffer":
        g8, bank = idx % 8, (idx // 8) % 4
        return "MACPB", (0, -1, g8 // 4, g8 % 4, bank, idx // (32 * cpr))
    raise AccelsimError(f"unknown PIM level {level!r}", field="level", allowed=sorted(BANK_SPREAD))


def gemv_requests(level: str, commands: int, cpr: int, vectors: int) -> list:
    """``commands`` MAC commands (one column each), each repeated for ``vectors`` input vectors."""
    out = []
    for idx in range(commands):
        out.extend([mac_request(level, idx, cpr)] * vectors)
    return out


def _prefix_commands(level: str, cpr: int) -> int:
    period = cpr * BANK_SPREAD[level]
    return max(4 * period, math.ceil(SIM_COMMANDS / period) * period)


@lru_cache(maxsize=256)
def _stream_profile(level: str, prefix: int, cpr: int, vectors: int, timings_key: tuple, org_key: tuple):
    """One simulation of the longest exactly simulated stream of a (placement, row, batch), with
    its progress after every request.

    Why one run serves every GEMV of that kind: the stream of ``n`` commands is the first ``n``
    commands of the longer one, and a placed command never moves, so a shorter GEMV's cycles are
    the longer run's cut after its last request; a longer GEMV extrapolates from the same run.
    A whole model then costs one channel simulation per placement and batch, not one per shape.
    """
    return simulate_channel(gemv_requests(level, prefix, cpr, vectors), dict(timings_key), dict(org_key),
                            track_progress=True)


@lru_cache(maxsize=4096)
def gemv_cycles(level: str, commands: int, cpr: int, vectors: int, timings_key: tuple, org_key: tuple,
                exact: bool = False) -> tuple[float, float]:
    """(cycles, row-hit rate) of one channel issuing ``commands`` MAC columns."""
    if exact:
        res = simulate_channel(gemv_requests(level, commands, cpr, vectors), dict(timings_key), dict(org_key))
        return float(res.cycles), res.row_hit_rate
    period = cpr * BANK_SPREAD[level]
    prefix = _prefix_commands(level, cpr)
    full = _stream_profile(level, prefix, cpr, vectors, timings_key, org_key)
    if commands <= prefix:
        cycles, _, hits, requests = full.progress[commands * vectors - 1]
        return float(cycles), (hits / requests if requests else 1.0)
    marks = full.refresh_marks
    if len(marks) >= 3:
        # steady state between two refreshes a whole number of intervals apart (the first is
        # skipped: the stream's start is not yet periodic)
        (i0, t0, acts0), (i1, t1, acts1) = marks[1], marks[-1]
        per_request, acts_per_request = (t1 - t0) / (i1 - i0), (acts1 - acts0) / (i1 - i0)
    else:
        half_n = prefix // 2 // period * period
        half_cycles, half_acts, _, _ = full.progress[half_n * vectors - 1]
        span = (prefix - half_n) * vectors
        per_request = (full.cycles - half_cycles) / span
        acts_per_request = (full.activates - half_acts) / span
    extra = (commands - prefix) * vectors
    cycles = full.cycles + extra * per_request
    # activations (row changes and re-opens after refresh) extrapolate the same way
    hits = 1.0 - (full.activates + extra * acts_per_request) / (commands * vectors)
    return float(math.ceil(cycles)), hits
