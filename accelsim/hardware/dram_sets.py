"""The shipped DRAM standards: GDDR6, GDDR6-AiM, HBM2, HBM3 (JEDEC-based) and HBM3 as AttAcc sets it.

Each set is copied value by value from one named simulator source file, which is the citation
of every value in it (``S_*`` below); values that are arithmetic on the source say so. Where two
sources disagree (Ramulator's JEDEC HBM3 and AttAcc's rescaled HBM2 nanoseconds) both are kept
under their own names, never averaged.
"""
from __future__ import annotations

from functools import lru_cache

from accelsim.errors import AccelsimError
from accelsim.hardware.dram import DramStandard

S_GDDR6 = ("CMU-SAFARI/ramulator2 python/ramulator/dram/gddr6.py, timing preset GDDR6_14000_1350mV_double "
           "('timings from Samsung GDDR6 8 Gb 16 banks datasheet'), org preset GDDR6_8Gb_x16")
S_AIM = "arkhadem/aim_simulator src/dram/impl/GDDR6.cpp, GDDR6_AiM_org and GDDR6_AiM_timing (commit 0f28a07)"
S_AIM_GB = ("arkhadem/aim_simulator src/dram/impl/GDDR6.cpp (commit c2f8ab6), 'AiM related timings': nCLREG = 0 "
            "(MAC-register read), nCWLGB = 1 (global-buffer write), nWPRE = 1 (bus turnaround)")
S_HBM2 = "umd-memsys/DRAMsim3 configs/HBM2_8Gb_x128.ini (commit 2981759)"
S_HBM3 = ("CMU-SAFARI/ramulator2 python/ramulator/dram/hbm3.py, HBM3_6400Mbps ('HBM3 JEDEC data, Table 4 in "
          "JESD238'), org HBM3_8Gb_8hi; tRFC 350 ns for 8 Gb ('Table 84 in JESD238') = 560 tCK")
S_ATTACC = ("scale-snu/attacc_simulator pim_ramulator_src/HBM3-PIM.cpp (commit c600051), timing preset "
            "HBM3_5.2Gbps, org HBM3_8Gb_2R, 16 channels per stack (trace_gen/gen_trace_attacc_bank.py); "
            "tRFC = JEDEC_rounding(350 ns, 769 ps) = 456 from the same file's tRFC table")

COMMANDS_DDR = ("ACT", "PRE", "PREA", "RD", "WR", "REFab")
COMMANDS_PIM = COMMANDS_DDR + ("ACTAB", "MACAB", "ACTSB", "MACSB", "PRESB", "ACTPB", "MACPB", "PREPB",
                               "WRGB", "MVSB", "MVGB", "SFM", "RDMAC")


def _t(values: dict[str, int], source: str, notes: dict[str, str] | None = None) -> dict[str, dict]:
    notes = notes or {}
    return {k: {"cycles": v, "source": f"{source}{'; ' + notes[k] if k in notes else ''}"} for k, v in values.items()}


def _raw() -> dict[str, dict]:
    gddr6 = dict(name="GDDR6", tck_ps=570, data_rate_mtps=14000,
                 organization=dict(channel=2, pseudochannel=1, rank=1, bankgroup=4, bank=4, row=16384),
                 row_bytes=2048, access_bytes=32, commands=COMMANDS_DDR, sources=[S_GDDR6],
                 timings=_t(dict(tBL=2, tCL=24, tRCDRD=27, tRCDWR=16, tRP=27, tRAS=53, tRC=79, tWR=27, tRTPL=4,
                                 tCWL=6, tCCDS=2, tCCDL=4, tRRDS=8, tRRDL=8, tWTRS=9, tWTRL=11, tFAW=29,
                                 tRFC=211, tREFI=3333), S_GDDR6,
                            {"tRFC": "nRFCab", "tRTPL": "nRTP"}))
    aim = dict(name="GDDR6-AiM", tck_ps=500, data_rate_mtps=16000,
               organization=dict(channel=32, pseudochannel=1, rank=1, bankgroup=4, bank=4, row=16384),
               row_bytes=2048, access_bytes=32, commands=COMMANDS_PIM,
               sources=[S_AIM, "16 Gb/s per pin: SK hynix AiM, JSSC 2023 doi 10.1109/jssc.2022.3200718 (abstract)"],
               timings=_t(dict(tBL=2, tCL=50, tRCDRD=36, tRCDWR=28, tRCDMAC=56, tRP=32, tRAS=54, tRC=89, tWR=33,
                               tRTPL=12, tCWL=6, tCCDS=2, tCCDL=2, tCCDAB=2, tRRDS=11, tRRDL=11, tWTRS=9, tWTRL=11,
                               tFAW=42, tRFC=210, tREFI=3333), S_AIM,
                          {"tRCDMAC": "nRCDRDMAC (activate to all-bank MAC)", "tRTPL": "nRTP",
                           "tCCDAB": "all-bank MAC spacing = nCCDL (one MAC column per 1 ns)",
                           "tFAW": "marked 'not used' in the source"}))
    aim["timings"].update(_t(dict(tCLREG=0, tCWLGB=1, tWPRE=1), S_AIM_GB))
    # activate-to-command latencies of the element-wise AiM commands (EWMUL, AF, bank <-> buffer copies),
    # read by accelsim.engines.pim.cent_block for CENT's non-GEMV instructions
    aim["timings"].update(_t(dict(tRCDEWMUL=25, tRCDRDAF=86, tRCDRDCP=66, tRCDWRCP=48), S_AIM,
                             {"tRCDEWMUL": "nRCDEWMUL", "tRCDRDAF": "nRCDRDAF (activation function)",
                              "tRCDRDCP": "nRCDRDCP (bank -> global buffer copy)",
                              "tRCDWRCP": "nRCDWRCP (global buffer -> bank copy)"}))
    hbm2 = dict(name="HBM2", tck_ps=1000, data_rate_mtps=2000,
                organization=dict(channel=8, pseudochannel=1, rank=1, bankgroup=4, bank=4, row=32768),
                row_bytes=2048, access_bytes=64, commands=COMMANDS_DDR, sources=[S_HBM2],
                timings=_t(dict(tBL=2, tCL=14, tRCDRD=14, tRCDWR=14, tRP=14, tRAS=34, tRC=48, tWR=16, tRTPL=6,
                                tCWL=4, tCCDS=1, tCCDL=2, tRRDS=4, tRRDL=6, tWTRS=6, tWTRL=8, tFAW=30, tRFC=260,
                                tREFI=3900), S_HBM2,
                           {"tBL": "burst_cycle = BL/2 with BL 4", "tRC": "derived: tRAS + tRP (not in the .ini)"}))
    hbm2["sources"].append("row_bytes derived: 1024 MB per channel / (16 banks x 32768 rows) = 2 KB; "
                           "access_bytes = 128-bit channel x BL4 = 64 B")
    hbm3 = dict(name="HBM3", tck_ps=625, data_rate_mtps=6400,
                organization=dict(channel=16, pseudochannel=2, rank=2, bankgroup=4, bank=4, row=8192),
                row_bytes=1024, access_bytes=32, commands=COMMANDS_DDR, sources=[S_HBM3],
                timings=_t(dict(tBL=2, tCL=20, tRCDRD=31, tRCDWR=15, tRP=26, tRAS=45, tRC=72, tWR=33, tRTPL=9,
                                tCWL=10, tCCDS=2, tCCDL=4, tRRDS=4, tRRDL=5, tWTRS=7, tWTRL=10, tFAW=24, tRFC=560,
                                tREFI=6240), S_HBM3, {"tRTPL": "nRTP"}))
    hbm3["sources"].append("row_bytes 1 KB and access_bytes 32 B (32-bit pseudo-channel x BL8): same file's org")
    attacc_t = dict(tBL=2, tCL=19, tRCDRD=19, tRCDWR=19, tRP=19, tRAS=45, tRC=63, tWR=21, tRTPS=6, tRTPL=8,
                    tCWL=6, tCCDS=2, tCCDL=4, tCCDAB=6, tCCDSB=6, tRRDS=2, tRRDL=4, tWTRS=8, tWTRL=11, tRTW=3,
                    tFAW=39, tRFC=456, tREFI=5070, tRREFD=11)
    notes = {"tCCDAB": "nCCDAB: all-bank MAC spacing under the power constraint",
             "tCCDSB": "nCCDSB: same-bank MAC spacing under the power constraint"}
    attacc = dict(name="HBM3-AttAcc", tck_ps=769, data_rate_mtps=5200,
                  organization=dict(channel=16, pseudochannel=2, rank=2, bankgroup=4, bank=4, row=16384),
                  row_bytes=1024, access_bytes=32, commands=COMMANDS_PIM,
                  sources=[S_ATTACC, "tCK = 1e6 / (5200 / 4) ps = 769 ps (same file, 'QDR DQ pins'); the values are "
                           "DRAMsim3 HBM2 nanoseconds rescaled, not a JEDEC HBM3 datasheet (comment in the file)"],
                  timings=_t(attacc_t, S_ATTACC, notes))
    npc = dict(attacc, name="HBM3-AttAcc-NPC",
               timings=_t(dict(attacc_t, tCCDAB=4, tCCDSB=4), S_ATTACC + " (HBM3_5.2Gbps_NPC: no power constraint)"))
    return {s["name"]: s for s in (gddr6, aim, hbm2, hbm3, attacc, npc)}


@lru_cache(maxsize=None)
def standard(name: str) -> DramStandard:
    """A shipped standard by name, validated (an inconsistent set fails here, at first use)."""
    raw = _raw()
    if name not in raw:
        raise AccelsimError(f"unknown DRAM standard {name!r}", field="standard", allowed=sorted(raw))
    return DramStandard.model_validate(raw[name])


def standard_names() -> list[str]:
    return sorted(_raw())
