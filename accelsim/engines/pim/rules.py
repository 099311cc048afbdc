"""Timing rules at command granularity, as one table the simulator and the checker both read.

A rule says: a ``following`` command may issue no earlier than ``latency`` cycles after a
``preceding`` command in the same scope (``level``); with ``window = w`` it limits how many
preceding commands fit in ``latency`` cycles (tFAW: 4 ACTs). Scopes follow Ramulator 2's levels
(channel > pseudochannel > rank > bankgroup > bank); an address field of -1 is a wildcard, which
is how all-bank commands (ACTAB, MACAB, PREA, REFab) cover every bank below the fields they name.

The DRAM rows follow Ramulator 2's HBM3 constraint table (python/ramulator/dram/hbm3.py and the
C++ HBM3 model) and the PIM rows AttAcc's HBM3-PIM table (scale-snu/attacc_simulator
pim_ramulator_src/HBM3-PIM.cpp, populate_timingcons), written here from those definitions.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import AccelsimError

CHANNEL, PCH, RANK, BG, BANK = 0, 1, 2, 3, 4
Addr = tuple[int, int, int, int, int, int]  # channel, pseudochannel, rank, bankgroup, bank, row (-1 = all)

ACTS = ("ACT", "ACTAB", "ACTSB", "ACTPB")
PRES = ("PRE", "PREA", "PRESB", "PREPB")
MACS = ("MACAB", "MACSB", "MACPB")
DATA = ("WRGB", "MVSB", "MVGB", "SFM", "RD", "WR", "RDMAC")  # commands that use the pseudo-channel data path
ROW_COMMANDS = frozenset(ACTS + PRES + ("REFab",))
COLUMN_COMMANDS = frozenset(MACS + DATA)
# which activate / precharge a column command of each family needs (open-row policy)
OPENER = {"RD": "ACT", "WR": "ACT", "MACAB": "ACTAB", "MACSB": "ACTSB", "MACPB": "ACTPB"}
CLOSER = {"ACT": "PRE", "ACTAB": "PREA", "ACTSB": "PRESB", "ACTPB": "PREPB"}


@dataclass(frozen=True)
class Rule:
    level: int
    preceding: frozenset[str]
    following: frozenset[str]
    latency: int
    window: int = 1
    name: str = ""


def same_scope(a: Addr, b: Addr, level: int) -> bool:
    """Whether two addresses share the node at ``level`` (wildcards match anything)."""
    for i in range(level + 1):
        if a[i] != b[i] and a[i] != -1 and b[i] != -1:
            return False
    return True


def _need(t: dict[str, int], name: str, why: str) -> int:
    if name not in t:
        raise AccelsimError(f"timing {name} is needed for {why}", field=f"timings.{name}", allowed=sorted(t))
    return t[name]


def build_rules(t: dict[str, int]) -> list[Rule]:
    """The rule table for a timing set (cycles). PIM rows appear only if their timings exist."""
    fs = frozenset
    rules: list[Rule] = []

    def add(level: int, pre, fol, lat: int, name: str, window: int = 1) -> None:
        rules.append(Rule(level, fs(pre), fs(fol), int(lat), window, name))

    row_cmds = ACTS + PRES + ("REFab",)
    # an HBM/GDDR activate occupies the row command bus for 2 cycles (Ramulator "2-cycle ACT command")
    add(CHANNEL, ACTS, row_cmds, 2, "ACT 2-cycle command")
    # bank: the row cycle
    add(BANK, ACTS, ACTS, t["tRC"], "tRC")
    add(BANK, ("ACT",), ("RD",), t["tRCDRD"], "tRCDRD")
    add(BANK, ("ACT",), ("WR",), t.get("tRCDWR", t["tRCDRD"]), "tRCDWR")
    add(BANK, ACTS, PRES, t["tRAS"], "tRAS")
    add(BANK, PRES, ACTS, t["tRP"], "tRP")
    add(BANK, ("RD",) + MACS, PRES, t["tRTPL"], "tRTP")
    if "tWR" in t:
        add(BANK, ("WR",), PRES, t.get("tCWL", 0) + t["tBL"] + t["tWR"], "tWR")
    # activates across banks
    add(BG, ("ACT",), ("ACT",), t["tRRDL"], "tRRDL")
    add(RANK, ("ACT",), ("ACT",), t["tRRDS"], "tRRDS")
    add(RANK, ("ACT",), ("ACT",), t["tFAW"], "tFAW", window=4)
    # column commands on the data path: bus occupancy, then short / long column-to-column
    add(PCH, DATA, DATA, t["tBL"], "tBL data bus")
    add(RANK, DATA, DATA, t["tCCDS"], "tCCDS")
    add(BG, DATA, DATA, t["tCCDL"], "tCCDL")
    # refresh: all banks of the pseudo-channel closed, then tRFC before any activate
    add(PCH, ACTS, ("REFab",), t["tRC"], "ACT to REF tRC")
    add(PCH, PRES, ("REFab",), t["tRP"], "PRE to REF tRP")
    add(PCH, ("REFab",), ACTS, t["tRFC"], "tRFC")
    # PIM all-bank MACs (AttAcc MACAB; AiM MAC_ABK): one MAC column in every bank per tCCDAB
    if "tCCDAB" in t:
        add(CHANNEL, ("MACAB",), ("MACAB",), t["tCCDAB"], "tCCDAB")
        add(CHANNEL, ("ACTAB",), ("ACTAB",), t["tRC"], "tRC all-bank")
        add(BANK, ("ACTAB",), ("MACAB",), t.get("tRCDMAC", t["tRCDRD"]), "tRCD to MAC")
    if "tCCDSB" in t:  # AttAcc bank-group PIM: the same bank of every bank group at once
        add(CHANNEL, ("MACSB",), ("MACSB",), t["tCCDSB"], "tCCDSB")
        add(BANK, ("ACTSB",), ("MACSB",), t["tRCDRD"], "tRCD to MAC")
    # AiM global buffer and MAC-result reads (arkhadem/aim_simulator src/dram/impl/GDDR6.cpp, commit
    # c2f8ab6, populate_timingcons): WR_GB writes the input vector into the channel's global buffer
    # over the external bus, RD_MAC reads the 16 banks' MAC registers back over it
    if "tCWLGB" in t:
        gb_write = t["tCWLGB"] + t["tBL"]  # the source's WRGB command latency: nCWLGB + nBL
        # data hazard (the source's memory system orders dependent ISRs): a MAC reads the global
        # buffer only after the write that fills it has completed
        add(CHANNEL, ("WRGB",), ("MACAB",), gb_write, "WRGB to MAC (global-buffer write latency)")
        # MAC16 <-> RDMAC16 share the bus inside the bank groups: nCCDL both ways
        add(CHANNEL, ("MACAB",), ("RDMAC",), t["tCCDL"], "MAC to RDMAC tCCDL")
        add(CHANNEL, ("RDMAC",), ("MACAB",), t["tCCDL"], "RDMAC to MAC tCCDL")
        # bus turnarounds on the external bus: write-to-read nCWLGB + nBL + nWTRS, read-to-write
        # nCLREG + nBL + 3 - nCWLGB + nWPRE (the source's tRTW form)
        add(CHANNEL, ("WRGB",), ("RDMAC",), gb_write + t["tWTRS"], "WRGB to RDMAC tWTR")
        add(CHANNEL, ("RDMAC",), ("WRGB",), t["tCLREG"] + t["tBL"] + 3 - t["tCWLGB"] + t["tWPRE"], "RDMAC to WRGB tRTW")
    # per-bank MACs (AttAcc buffer PIM, broadcast to both pseudo-channels): column-command spacing
    add(CHANNEL, ("MACPB",), ("MACPB",), t["tBL"], "MACPB data bus")
    add(RANK, ("MACPB",), ("MACPB",), t["tCCDS"], "MACPB tCCDS")
    add(BG, ("MACPB",), ("MACPB",), t["tCCDL"], "MACPB tCCDL")
    add(BANK, ("ACTPB",), ("MACPB",), t["tRCDRD"], "tRCD to MAC")
    return rules



def rules_by_following(rules: list[Rule]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for r in rules:
        for f in r.following:
            out.setdefault(f, []).append(r)
    return out


def rules_by_preceding(rules: list[Rule]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for r in rules:
        for p in r.preceding:
            out.setdefault(p, []).append(r)
    return out


def check_timing_names(t: dict[str, int]) -> None:
    for name in ("tRC", "tRCDRD", "tRAS", "tRP", "tRTPL", "tRRDL", "tRRDS", "tFAW", "tBL", "tCCDS", "tCCDL",
                 "tRFC", "tREFI"):
        _need(t, name, "the command-level rules")
