"""AiM global-buffer GEMV streams: WRGB refills and RDMAC read-outs at command level."""
import pytest

from accelsim.engines.pim.channel_sim import simulate_channel
from accelsim.engines.pim.checker import check_trace
from accelsim.engines.pim.gb_gemv import (
    ORDERS,
    GbGemv,
    best_order,
    gb_gemv_cycles,
    requests,
)
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.dram_sets import standard

AIM = standard("GDDR6-AiM")
# row switches made (almost) free, so the buffer traffic alone sets the time: the closed form
# below then follows from the WRGB / MAC / RDMAC rules only
FREE_ROWS = AIM.cycles() | dict(tRP=1, tRCDMAC=1, tRTPL=1, tRAS=1, tRC=2)


def keys(timings=None):
    return tuple(sorted((timings or AIM.cycles()).items())), tuple(sorted(AIM.organization.items()))


def closed_form(order: str, bursts: int, chunks: int, neurons: int) -> int:
    """Cycles of the one-register stream from the rules (tBL = tCCDAB = tCCDL = 2, WRGB->MAC
    nCWLGB + nBL = 3, WRGB->RDMAC 3 + nWTRS 9 = 12, RDMAC->WRGB tRTW 5): a fill of B bursts then its
    B MACs take 4B cycles; a read-out waits max(4B + 1, 2B + 10) after its fill began."""
    b = bursts
    m = max(4 * b + 1, 2 * b + 10)
    keep = (chunks - 1) * (m + (neurons - 1) * (2 * b + 2) + 5) + m + (neurons - 1) * (2 * b + 2) + 1
    if order == "keep" or chunks == 1:
        return keep
    return (neurons * chunks - 1) * 4 * b + (neurons - 1) * (m + 5 - 4 * b) + m + 1


@pytest.mark.parametrize("bursts", [1, 2, 6])
@pytest.mark.parametrize("chunks", [1, 2, 3])
@pytest.mark.parametrize("neurons", [1, 3])
def test_refill_cost_matches_the_closed_form(bursts, chunks, neurons):
    g = GbGemv(16 * bursts * chunks, neurons, 2, 32 * bursts, 1, 2048, 32)
    for order in ORDERS:
        res = simulate_channel(requests(g, order), FREE_ROWS, AIM.organization, refresh=False)
        assert res.cycles == closed_form(order, bursts, chunks, neurons)
        assert res.requests == g.counts(order)
    # every extra refill of the refill order costs its 4B cycles: more fills, more time
    if chunks > 1 and neurons > 1:
        assert g.fills("refill") == neurons * chunks > g.fills("keep") == chunks


def test_simulated_buffer_streams_pass_the_checker():
    for g in (GbGemv(4096, 40, 2, 2048, 32, 2048, 32), GbGemv(128, 70, 2, 2048, 32, 2048, 32)):
        for order in ORDERS:
            res = simulate_channel(requests(g, order), AIM.cycles(), AIM.organization, record=True)
            assert check_trace(res.trace, AIM.cycles(), AIM.organization) is None
            assert res.requests == g.counts(order)


ALL = (0, -1, -1, -1, -1, -1)
ROW0 = (0, -1, -1, -1, -1, 0)


@pytest.mark.parametrize("trace, bad_at, rule", [
    # a MAC 2 cycles after the buffer write it reads: the write (nCWLGB + nBL = 3) has not landed
    ([(0, "ACTAB", ROW0), (58, "WRGB", ALL), (60, "MACAB", ROW0)], 2, "WRGB to MAC (global-buffer write latency)"),
    # a read-out 4 cycles after a buffer write: the bus needs nCWLGB + nBL + nWTRS = 12
    ([(0, "WRGB", ALL), (4, "RDMAC", ALL)], 1, "WRGB to RDMAC tWTR"),
    # a buffer write 3 cycles after a read-out: the bus turnaround needs 5
    ([(0, "RDMAC", ALL), (3, "WRGB", ALL)], 1, "RDMAC to WRGB tRTW"),
    # two buffer bursts in one data-bus slot
    ([(0, "WRGB", ALL), (1, "WRGB", ALL)], 1, "tBL data bus"),
])
def test_checker_names_the_buffer_rule_a_broken_trace_violates(trace, bad_at, rule):
    v = check_trace(trace, AIM.cycles(), AIM.organization)
    assert v is not None and v.rule == rule and v.index == bad_at
    # the same trace with the offending command moved to the earliest legal cycle is clean
    need = {"WRGB to MAC (global-buffer write latency)": 61, "WRGB to RDMAC tWTR": 12, "RDMAC to WRGB tRTW": 5,
            "tBL data bus": 2}[rule]
    fixed = trace[:bad_at] + [(need,) + trace[bad_at][1:]]
    assert check_trace(fixed, AIM.cycles(), AIM.organization) is None


def test_the_mapper_picks_the_faster_order():
    for g in (GbGemv(2048, 40, 2, 2048, 32, 2048, 32), GbGemv(16 * 6 * 3, 3, 2, 192, 1, 2048, 32)):
        for timings in (None, FREE_ROWS):
            order, cycles, _ = best_order(g, *keys(timings))
            assert cycles == min(gb_gemv_cycles(g, o, *keys(timings))[0] for o in ORDERS)
            assert cycles == gb_gemv_cycles(g, order, *keys(timings))[0]


def test_long_streams_extrapolate_close_to_full_simulation(monkeypatch):
    from accelsim.engines.pim import gb_gemv

    g = GbGemv(2048, 192, 2, 2048, 32, 2048, 32)  # 6 register groups
    full = simulate_channel(requests(g, "refill"), AIM.cycles(), AIM.organization).cycles
    gb_gemv.gb_gemv_cycles.cache_clear()
    monkeypatch.setattr(gb_gemv, "EXACT_REQUESTS", 9000)
    est, _ = gb_gemv.gb_gemv_cycles(g, "refill", *keys())
    gb_gemv.gb_gemv_cycles.cache_clear()
    assert abs(est - full) / full < 0.01


def test_buffer_costs_time_against_resident_inputs():
    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    hw = load_hardware("gddr6-aim")
    bare = hw.model_copy(update=dict(global_buffer_bytes=None, mac_registers_per_bank=None))
    g = build_model(load_model("gpt2-xl"), "decode", batch=1, context=256, tp=1)
    with_buffer, without = simulate(g, hw), simulate(g, bare)
    assert any("buffer order" in row["bound"] for row in with_buffer.layers)
    assert not any("buffer order" in row["bound"] for row in without.layers)
    pim = lambda r: sum(row["total_s"] * row["repeat"] for row in r.layers if row["unit"] == "pim")
    # the layouts differ (CENT's neuron-per-row chunks vs PIM-GPT's packed rows, and the resident
    # model charges the vectors at the host rate instead), so neither bounds the other exactly;
    # the buffer commands must not make the GEMVs markedly cheaper
    assert pim(with_buffer) > 0.9 * pim(without)


def test_buffer_fields_are_validated():
    hw = load_hardware("gddr6-aim")
    with pytest.raises(ValueError, match="come together"):
        type(hw).model_validate(hw.model_dump() | {"mac_registers_per_bank": None})
    with pytest.raises(ValueError, match="bursts"):
        type(hw).model_validate(hw.model_dump() | {"global_buffer_bytes": 1000})
    with pytest.raises(AccelsimError):
        GbGemv(4096, 1, 2, 4096, 1, 2048, 32)


def test_energy_components_follow_the_cited_per_event_energies():
    from accelsim.ir import Graph, gemm
    from accelsim.simulate import simulate

    hw = load_hardware("gddr6-aim")
    # one 1 x 4096 x 16384 GEMV: 32 neurons per bank, each exactly 4 full 2 KB rows
    r = simulate(Graph("fc", [gemm("fc", 1, 4096, 16384)]), hw)
    parts = r.core.energy_pj_by_component
    weight_bytes = 4096 * 16384 * 2
    assert parts["pim_read"] == pytest.approx(weight_bytes * hw.energy_pj_per_byte_pim)
    # one bank activation per 2 KB row streamed (64 columns), plus the rows re-opened after each
    # refresh: between 1 and 1.1 per row, at CENT's 66.3 mW x 44.5 ns each
    rows = weight_bytes / hw.dram.row_bytes
    assert rows * hw.energy_pj_per_activate <= parts["pim_activate"] <= 1.1 * rows * hw.energy_pj_per_activate
    # standby power of the 32 channels over the PIM time
    pim_s = sum(row["total_s"] * row["repeat"] for row in r.layers if row["unit"] == "pim")
    assert parts["pim_background"] == pytest.approx(hw.background_w_per_channel * 32 * pim_s * 1e12)
    # input and output cross the bus at CENT's DQ 5.5 pJ/bit
    assert parts["pim_io"] == pytest.approx((4096 + 16384) * 2 * 44.0)


def test_unknown_energies_are_none_not_zero():
    from accelsim.ir import Graph, gemm
    from accelsim.simulate import simulate

    r = simulate(Graph("fc", [gemm("fc", 1, 1024, 1024)]), "pim-gpt")
    assert r.core.energy_pj is None and "pim_read" in r.core.energy_unknown
