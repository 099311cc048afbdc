"""DRAM standards as data: shipped sets validate, inconsistent sets are rejected."""
import pytest
from pydantic import ValidationError

from accelsim.hardware.dram import DramStandard
from accelsim.hardware.dram_sets import _raw, standard, standard_names


def test_every_shipped_set_validates_and_cites_every_value():
    for name in standard_names():
        s = standard(name)
        assert all(len(t.source) > 10 for t in s.timings.values())
        assert s.capacity_bytes() > 0


def test_published_peaks():
    # AttAcc/Duplex stack bandwidth 670.4 GB/s at 5.2375 Gb/s x 1024 pins; our tCK 769 ps rounds 5.2 Gb/s
    assert standard("HBM3-AttAcc").peak_bytes_per_s() == pytest.approx(5.2e9 * 1024 / 8, rel=0.01)
    assert standard("HBM3").peak_bytes_per_s() == pytest.approx(6.4e9 * 1024 / 8, rel=1e-9)
    # AiM: 32 GB/s per channel (2 channels = the chip's 64 GB/s I/O)
    assert standard("GDDR6-AiM").peak_bytes_per_s() / 32 == pytest.approx(32e9, rel=1e-9)


@pytest.mark.parametrize("field,value", [("tRC", 40), ("tRAS", 10), ("tCCDL", 1), ("tREFI", 100)])
def test_inconsistent_timing_is_an_error(field, value):
    raw = _raw()["HBM3"]
    raw = dict(raw, timings=dict(raw["timings"], **{field: {"cycles": value, "source": "typo test"}}))
    with pytest.raises(ValidationError):
        DramStandard.model_validate(raw)


def test_one_cycle_rounding_allowance_only():
    raw = _raw()["HBM3"]
    c = {k: v["cycles"] for k, v in raw["timings"].items()}
    ok = c["tRAS"] + c["tRP"] - 1
    DramStandard.model_validate(dict(raw, timings=dict(raw["timings"], tRC={"cycles": ok, "source": "edge"})))
    with pytest.raises(ValidationError):
        DramStandard.model_validate(dict(raw, timings=dict(raw["timings"], tRC={"cycles": ok - 1, "source": "edge"})))


def test_missing_timing_is_an_error():
    raw = _raw()["GDDR6"]
    t = dict(raw["timings"])
    del t["tFAW"]
    with pytest.raises(ValidationError, match="tFAW"):
        DramStandard.model_validate(dict(raw, timings=t))


def test_aim_all_bank_mac_waits_for_its_own_activate_latency():
    # AiM: activate-to-MAC is nRCDRDMAC (56 tCK), not the normal tRCDRD (36)
    from accelsim.engines.pim.channel_sim import simulate_channel
    from accelsim.engines.pim.gemv import gemv_requests

    s = standard("GDDR6-AiM")
    res = simulate_channel(gemv_requests("bank", 4, 64, 1), s.cycles(), s.organization, refresh=False, record=True)
    macs = [t for t, name, _ in res.trace if name == "MACAB"]
    assert macs == [56, 58, 60, 62]


@pytest.mark.parametrize("change,match", [
    ({"dtype_bytes": 3}, "do not divide"),
    ({"level": "bankgroup", "standard": "GDDR6-AiM", "banks_per_mac_command": 4}, "tCCDSB"),
    ({"level": "buffer", "mac_spacing_cycles": 3}, "data bus"),
    ({"banks_per_mac_command": 65}, "banks per channel"),
])
def test_bad_placements_are_errors(change, match):
    from accelsim.hardware import load_hardware
    from accelsim.hardware.pim import PimSpec

    data = load_hardware("hbm3-pim").model_dump() | change
    with pytest.raises(ValidationError, match=match):
        PimSpec.model_validate(data)


def test_internal_bandwidth_follows_from_timing():
    from accelsim.hardware import load_hardware

    # AttAcc BW_SCALE: 16x the stack's external bandwidth for bank PIM without the power
    # constraint, 1x for buffer PIM (scale-snu/attacc_simulator src/config.py)
    npc, buf = load_hardware("hbm3-pim-npc"), load_hardware("hbm3-pim-buffer")
    ext = standard("HBM3-AttAcc").peak_bytes_per_s() * npc.devices
    assert npc.internal_bytes_per_s / ext == pytest.approx(16)
    assert buf.internal_bytes_per_s / ext == pytest.approx(1)
    # Duplex Logic-PIM: 4x the stack bandwidth (arXiv 2409.01141)
    assert load_hardware("duplex").internal_bytes_per_s / ext == pytest.approx(4)
