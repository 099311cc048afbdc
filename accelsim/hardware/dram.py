"""DRAM standards as data: organization levels, commands and timing parameters, validated.

Why data and not code: a standard is a table a reader can check against its source line by line
(the way Ramulator 2 declares ``m_levels``, ``m_commands`` and ``m_timings`` per standard). Every
timing value carries the place it was read (``source``), and the set is checked for the
relations the DRAM core itself imposes, so a typo such as tRC < tRAS + tRP is an error, not a
silently optimistic simulation.

Units: every timing is an integer number of DRAM command-clock cycles (tCK); ``tck_ps`` converts.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from accelsim.hardware.base import Spec

# The organization levels of Ramulator 2's HBM3 / GDDR6 models, outermost first. A standard
# without pseudo-channels or ranks sets their count to 1.
LEVELS: tuple[str, ...] = ("channel", "pseudochannel", "rank", "bankgroup", "bank", "row")

# Timings every shipped standard must define (the JEDEC core set the simulator needs).
REQUIRED_TIMINGS: tuple[str, ...] = ("tBL", "tCL", "tRCDRD", "tRP", "tRAS", "tRC", "tRTPL", "tCCDS", "tCCDL",
                                     "tRRDS", "tRRDL", "tFAW", "tRFC", "tREFI")


class Timing(Spec):
    """One timing parameter: cycles of tCK and where the value was read."""

    cycles: int = Field(ge=0)
    source: str = Field(min_length=3)


class DramStandard(Spec):
    """A DRAM device standard (one timing preset on one organization preset)."""

    name: str
    tck_ps: float = Field(gt=0, description="command clock period")
    data_rate_mtps: float = Field(gt=0, description="per-pin transfer rate, MT/s")
    organization: dict[str, int] = Field(description="count per level in LEVELS (channel = per device/stack)")
    row_bytes: int = Field(gt=0, description="bytes of one bank row (one pseudo-channel's page)")
    access_bytes: int = Field(gt=0, description="bytes moved by one column command (prefetch x width)")
    commands: tuple[str, ...]
    timings: dict[str, Timing]
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DramStandard:
        missing = [lv for lv in LEVELS if lv not in self.organization]
        if missing:
            raise ValueError(f"organization lacks levels {missing} (levels: {list(LEVELS)})")
        bad = {k: v for k, v in self.organization.items() if v < 1}
        if bad:
            raise ValueError(f"organization counts must be >= 1, got {bad}")
        if self.row_bytes % self.access_bytes:
            raise ValueError(f"row_bytes {self.row_bytes} is not a multiple of access_bytes {self.access_bytes}")
        absent = [t for t in REQUIRED_TIMINGS if t not in self.timings]
        if absent:
            raise ValueError(f"{self.name}: timings {absent} are required")
        c = {k: v.cycles for k, v in self.timings.items()}
        # tRC >= tRAS + tRP: a row cycle is open time plus precharge. Datasheets give the three in
        # ns and each is rounded up to whole cycles on its own; ceil(a) + ceil(b) <= ceil(a + b) + 1,
        # so a set read from ns may show tRC one cycle short of the sum, never more.
        if c["tRC"] < c["tRAS"] + c["tRP"] - 1:
            raise ValueError(f"{self.name}: tRC {c['tRC']} < tRAS {c['tRAS']} + tRP {c['tRP']} "
                             "(beyond the one-cycle rounding of ns values)")
        if c["tRAS"] < c["tRCDRD"]:
            raise ValueError(f"{self.name}: tRAS {c['tRAS']} < tRCDRD {c['tRCDRD']}: a row closes before it is readable")
        if c["tCCDL"] < c["tCCDS"]:
            raise ValueError(f"{self.name}: tCCDL {c['tCCDL']} < tCCDS {c['tCCDS']}")
        if c["tRRDL"] < c["tRRDS"]:
            raise ValueError(f"{self.name}: tRRDL {c['tRRDL']} < tRRDS {c['tRRDS']}")
        if c["tREFI"] <= c["tRFC"]:
            raise ValueError(f"{self.name}: tREFI {c['tREFI']} <= tRFC {c['tRFC']}: refresh would never end")
        if c["tBL"] < 1 or c["tCCDS"] < 1:
            raise ValueError(f"{self.name}: tBL and tCCDS must be >= 1 cycle")
        return self

    def cycles(self) -> dict[str, int]:
        """Timing name -> cycles (what the simulator and checker read)."""
        return {k: v.cycles for k, v in self.timings.items()}

    @property
    def tck_s(self) -> float:
        return self.tck_ps * 1e-12

    @property
    def columns_per_row(self) -> int:
        return self.row_bytes // self.access_bytes

    @property
    def banks_per_channel(self) -> int:
        o = self.organization
        return o["pseudochannel"] * o["rank"] * o["bankgroup"] * o["bank"]

    def bank_bytes(self) -> int:
        return self.organization["row"] * self.row_bytes

    def capacity_bytes(self) -> int:
        return self.organization["channel"] * self.banks_per_channel * self.bank_bytes()

    def peak_bytes_per_s(self) -> float:
        """External bandwidth: every pseudo-channel moves ``access_bytes`` per tBL."""
        o = self.organization
        return o["channel"] * o["pseudochannel"] * self.access_bytes / (self.timings["tBL"].cycles * self.tck_s)
