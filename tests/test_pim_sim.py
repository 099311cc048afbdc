"""Command-level simulator against closed forms, the independent trace checker, broken traces."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.pim import gemv
from accelsim.engines.pim.attacc_trace import (
    AttentionCase,
    attention_stream,
    split_channels,
)
from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.engines.pim.checker import check_trace
from accelsim.engines.pim.gemv import SIM_COMMANDS, gemv_cycles, gemv_requests
from accelsim.hardware.dram_sets import standard

STD = standard("HBM3-AttAcc-NPC")
T, ORG = STD.cycles(), STD.organization


def test_one_row_closed_form():
    # ACTAB at 0, MACs tCCDAB apart from tRCD: the last at tRCD + (n-1) tCCDAB
    n = 20
    res = simulate_channel(gemv_requests("bank", n, 32, 1), T, ORG, refresh=False, record=True)
    macs = [t for t, name, _ in res.trace if name == "MACAB"]
    assert macs[0] == T["tRCDRD"] and macs[-1] == T["tRCDRD"] + (n - 1) * T["tCCDAB"]


def test_row_switch_closed_form():
    # two full rows: PREA waits tRTP after the last MAC, ACTAB tRP after it, MAC tRCD after that
    res = simulate_channel(gemv_requests("bank", 64, 32, 1), T, ORG, refresh=False, record=True)
    macs = [t for t, name, _ in res.trace if name == "MACAB"]
    assert macs[32] - macs[31] == T["tRTPL"] + T["tRP"] + T["tRCDRD"]
    assert res.activates == 2 and res.row_hits == 62


def _mutations(trace):
    """Deliberately broken copies: one command moved earlier, or one activate removed."""
    rng = random.Random(7)
    for _ in range(12):
        i = rng.randrange(1, len(trace))
        t, name, a = trace[i]
        yield trace[:i] + [(max(0, t - rng.randint(1, 3)), name, a)] + trace[i + 1:]
    acts = [i for i, e in enumerate(trace) if e[1] == "ACTAB"]
    i = acts[1]
    yield trace[:i] + trace[i + 1:]


@pytest.mark.parametrize("level", ["bank", "bankgroup", "buffer"])
def test_simulated_attacc_traces_pass_the_checker(level):
    case = AttentionCase(level, 18, 64, 256, 2)
    ch0 = split_channels(attention_stream(case))[0]
    res = simulate_channel(ch0, T, ORG, record=True)
    assert check_trace(res.trace, T, ORG) is None


def test_checker_finds_broken_traces():
    res = simulate_channel(gemv_requests("bank", 40 * 32, 32, 2), T, ORG, record=True)
    assert check_trace(res.trace, T, ORG) is None
    found = 0
    for broken in _mutations(res.trace):
        found += check_trace(broken, T, ORG) is not None
    assert found >= 10  # nearly every MAC is exactly tCCDAB after the previous one: moving it breaks a rule
    acts_removed = list(_mutations(res.trace))[-1]
    v = check_trace(acts_removed, T, ORG)
    assert v is not None and v.rule in ("bank state", "tRP", "tRCD to MAC")


def test_checker_flags_missing_refresh():
    t = T | {"tREFI": 600}  # a short (still valid) refresh interval keeps the trace small
    res = simulate_channel(gemv_requests("bank", 40 * 32, 32, 1), t, ORG, refresh=False, record=True)
    assert res.cycles > 9 * t["tREFI"]
    assert check_trace(res.trace, t, ORG, check_refresh=False) is None
    v = check_trace(res.trace, t, ORG)
    assert v is not None and v.rule == "tREFI"


def test_representative_channel_equals_full_stack():
    # channels share no rule: simulating all 16 channels' commands together (one mixed trace,
    # checked as one) gives the busiest channel's cycles, which is channel 0's
    case = AttentionCase("bank", 21, 64, 128, 2)
    per_ch = split_channels(attention_stream(case))
    results = {c: simulate_channel(s, T, ORG, channel=c, record=True) for c, s in per_ch.items()}
    mixed = sorted(e for r in results.values() for e in r.trace)
    assert check_trace(mixed, T, ORG) is None
    assert max(r.cycles for r in results.values()) == results[0].cycles


@settings(max_examples=5, deadline=None)
@given(level=st.sampled_from(["bank", "bankgroup", "buffer"]), extra=st.integers(1, 4000),
       vectors=st.integers(1, 2))
def test_periodic_extrapolation_matches_full_simulation(level, extra, vectors):
    # a shorter prefix than the engine's keeps the exact reference runs small; the refresh
    # interval is shortened with it so the prefix still spans several intervals
    gemv.SIM_COMMANDS = 4096
    t = standard("HBM3-AttAcc").cycles() | {"tREFI": 2000}
    key_t, key_o = tuple(sorted(t.items())), tuple(sorted(ORG.items()))
    commands = 4100 + extra
    fast, hit_fast = gemv_cycles(level, commands, 32, vectors, key_t, key_o)
    full, hit_full = gemv_cycles(level, commands, 32, vectors, key_t, key_o, exact=True)
    # linear extrapolation misses at most the fractional refresh of the tail (one tRFC plus the
    # precharge and re-activation around it) on top of the steady-state slope error
    one_refresh = t["tRFC"] + t["tRP"] + t["tRCDRD"] + t["tRTPL"] + 2 * 32
    assert abs(fast - full) <= one_refresh + 0.002 * full
    gemv.gemv_cycles.cache_clear()
    gemv.SIM_COMMANDS = SIM_COMMANDS
    # the same fractional refresh re-opens at most every row group once (1 / 4 / 32 activates)
    reopen = gemv.BANK_SPREAD[level] / (commands * vectors)
    assert abs(hit_fast - hit_full) <= reopen + 0.001


@pytest.mark.parametrize("level", ["bankgroup", "buffer"])
def test_level_streams_pass_the_checker(level):
    t = standard("HBM3-AttAcc").cycles()
    res = simulate_channel(gemv_requests(level, 3000, 32, 1), t, ORG, record=True)
    assert check_trace(res.trace, t, ORG) is None


def test_tfaw_and_trrd_closed_form():
    # reads to 6 different banks of one rank: activates tRRD_S / tRRD_L apart, the 5th waits for
    # the four-activate window; checked against the rule definitions, then broken on purpose
    std = standard("HBM3")
    t = std.cycles()
    banks = [(0, 0, 0, g, b) for b in range(2) for g in range(4)][:6]
    reqs = [("RD", a + (5,)) for a in banks]
    res = simulate_channel(reqs, t, std.organization, refresh=False, record=True)
    acts = sorted(c for c, name, _ in res.trace if name == "ACT")
    assert acts[4] - acts[0] >= t["tFAW"] and acts[4] - acts[0] == max(t["tFAW"], 4 * t["tRRDS"])
    assert check_trace(res.trace, t, std.organization) is None
    early = [(c - 1 if c == acts[4] and n == "ACT" else c, n, a) for c, n, a in res.trace]
    v = check_trace(early, t, std.organization)
    assert v is not None and v.rule == "tFAW"


@settings(max_examples=8, deadline=None)
@given(level=st.sampled_from(["bank", "bankgroup", "buffer"]), n=st.integers(1, 700),
       vectors=st.integers(1, 2), barrier_every=st.integers(0, 40))
def test_progress_cut_equals_the_shorter_stream_simulated_alone(level, n, vectors, barrier_every):
    # why the engine may answer every GEMV of one placement from one run: the stream of n
    # commands is a prefix of a longer one, and a placed command never moves
    from accelsim.engines.pim.channel_sim import BARRIER

    t = standard("HBM3-AttAcc").cycles() | {"tREFI": 900}  # several refreshes inside the stream
    stream = gemv_requests(level, 720, 32, vectors)
    if barrier_every:
        stream = [r for i, req in enumerate(stream)
                  for r in ([req, (BARRIER, (0, -1, -1, -1, -1, -1))] if i % barrier_every == 0 else [req])]
    long = simulate_channel(stream, t, ORG, track_progress=True)
    assert len(long.progress) == len(stream) and long.progress[-1][0] == long.cycles
    short = simulate_channel(stream[:n], t, ORG)
    cycles, activates, hits, requests = long.progress[n - 1]
    assert (cycles, activates, hits, requests) == (short.cycles, short.activates, short.row_hits, short.row_requests)
