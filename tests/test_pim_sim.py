"""Command-level simulator against closed forms, the independent trace checker, broken traces."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.pim.attacc_trace import AttentionCase, attention_stream, split_channels
from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.engines.pim.checker import check_trace
from accelsim.engines.pim.gemv import gemv_cycles, gemv_requests
from accelsim.hardware.dram_sets import standard

STD = standard("HBM3-AttAcc-NPC")
T, ORG = STD.cycles(), STD.organization


def test_one_row_closed_form():
    # ACTAB at 0, MACs tCCDAB apart from tRCD: the last at tRCD + (n-1) tCCDAB
    n = 20
    res = simulate_channel(gemv_requests(1, n, 32, 1), T, ORG, refresh=False, record=True)
    macs = [t for t, name, _ in res.trace if name == "MACAB"]
    assert macs[0] == T["tRCDRD"] and macs[-1] == T["tRCDRD"] + (n - 1) * T["tCCDAB"]


def test_row_switch_closed_form():
    # two full rows: PREA waits tRTP after the last MAC, ACTAB tRP after it, MAC tRCD after that
    res = simulate_channel(gemv_requests(2, 64, 32, 1), T, ORG, refresh=False, record=True)
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
    res = simulate_channel(gemv_requests(40, 40 * 32, 32, 2), T, ORG, record=True)
    assert check_trace(res.trace, T, ORG) is None
    found = 0
    for broken in _mutations(res.trace):
        found += check_trace(broken, T, ORG) is not None
    assert found >= 10  # nearly every MAC is exactly tCCDAB after the previous one: moving it breaks a rule
    acts_removed = list(_mutations(res.trace))[-1]
    v = check_trace(acts_removed, T, ORG)
    assert v is not None and v.rule in ("bank state", "tRP", "tRCD to MAC")


def test_checker_flags_missing_refresh():
    res = simulate_channel(gemv_requests(400, 400 * 32, 32, 1), T, ORG, refresh=False, record=True)
    assert res.cycles > 9 * T["tREFI"]
    v = check_trace(res.trace, T, ORG)
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


@settings(max_examples=6, deadline=None)
@given(rows=st.integers(300, 420), vectors=st.integers(1, 2))
def test_periodic_extrapolation_matches_full_simulation(rows, vectors):
    key_t, key_o = tuple(sorted(T.items())), tuple(sorted(ORG.items()))
    fast, _ = gemv_cycles(rows, rows * 32 - 5, 32, vectors, key_t, key_o)
    full, _ = gemv_cycles(rows, rows * 32 - 5, 32, vectors, key_t, key_o, exact=True)
    assert fast == pytest.approx(full, rel=0.01)
