"""Processing-in-memory devices: a PIM placement over a DRAM standard (``kind: pim``).

Why a placement over a standard: where the MAC units sit (per bank, per bank group, on the
buffer die, on the HBM logic die) decides how many banks one MAC command reads and how often it
may issue, so the internal bandwidth *follows* from the standard's timing instead of being
typed in. Every field is a fact from a named source (preset ``sources:``); derived quantities
are properties here.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from accelsim.hardware.base import HardwareSpec, Spec, register_kind

LEVELS = ("bank", "bankgroup", "buffer", "logic")


class HostSpec(Spec):
    """Where the operators that are not GEMVs run (the device's ASIC or an xPU beside it)."""

    name: str
    flops_per_s: float | None = Field(default=None, gt=0, description="None: compute rate not published")
    bytes_per_s: float = Field(gt=0, description="bandwidth the host reads the PIM memory with")
    energy_pj_per_byte: float | None = Field(default=None, ge=0)


class PimSpec(HardwareSpec):
    kind: Literal["pim"] = "pim"
    standard: str = Field(description="a DRAM standard of accelsim.hardware.dram_sets")
    devices: int = Field(default=1, ge=1, description="stacks or chips-groups of the standard's channel count")
    channels: int | None = Field(default=None, ge=1, description="channels used per device (default: all)")
    level: Literal["bank", "bankgroup", "buffer", "logic"]
    banks_per_mac_command: int = Field(ge=1, description="banks of one channel one MAC command reads")
    mac_spacing_cycles: int = Field(ge=1, description="tCK between MAC commands of a channel (tCCDAB, tCCD_L)")
    dtype_bytes: int = Field(ge=1)
    power_limited: bool = False
    all_bank_commands: list[str] = Field(default_factory=list)
    macs_per_s_per_device: float | None = Field(default=None, gt=0, description="MAC-unit cap (logic die)")
    pim_ops: Literal["gemv", "attention", "op_per_byte"] = Field(
        description="gemv: every weight/KV GEMV on PIM; attention: only KV-cache GEMVs; "
                    "op_per_byte: GEMVs whose MACs per weight byte are below op_per_byte_limit")
    op_per_byte_limit: float | None = Field(default=None, gt=0)
    host: HostSpec
    coprocess_experts: bool = Field(default=False, description="split MoE experts between PIM and host, run "
                                                               "concurrently (Duplex expert co-processing)")
    energy_pj_per_byte_pim: float | None = Field(default=None, ge=0, description="None: energy not modelled")
    energy_pj_per_activate: float | None = Field(default=None, ge=0, description=(
        "per bank activation; None: not a separate event in the sources (folded into the per-byte figure) "
        "or not published"))
    energy_pj_per_mac: float | None = Field(default=None, ge=0, description="per multiply-accumulate")
    energy_pj_per_io_byte: float | None = Field(default=None, ge=0, description=(
        "per byte of input vectors and results moved over the device bus to and from the PIM buffers"))
    background_w_per_channel: float | None = Field(default=None, ge=0, description=(
        "standby power of one channel while the PIM works"))
    global_buffer_bytes: int | None = Field(default=None, gt=0, description=(
        "per-channel input buffer the all-bank MACs read their vector from, filled by WRGB over the external "
        "bus (AiM's GB); None: the input is assumed resident (not modelled as commands)"))
    mac_registers_per_bank: int | None = Field(default=None, ge=1, description=(
        "MAC result registers per bank: output neurons one buffer fill can accumulate before RDMAC reads them"))
    dma_requests_per_cycle: float | None = Field(default=None, gt=0, description=(
        "host requests (trace lines / instructions) the device's PIM DMA decodes per tCK, in order; None: "
        "instruction issue not modelled (accelsim.engines.pim.cent_block needs it)"))

    @model_validator(mode="after")
    def _check(self) -> PimSpec:
        from accelsim.hardware.dram_sets import standard

        std = standard(self.standard)
        if self.channels is not None and self.channels > std.organization["channel"]:
            raise ValueError(f"channels {self.channels} > the standard's {std.organization['channel']}")
        if self.banks_per_mac_command > std.banks_per_channel:
            raise ValueError(f"banks_per_mac_command {self.banks_per_mac_command} > {std.banks_per_channel} banks "
                             "per channel")
        if std.access_bytes % self.dtype_bytes or std.row_bytes % self.dtype_bytes:
            raise ValueError(f"{self.dtype_bytes}-byte lanes do not divide the {std.access_bytes}-byte column "
                             f"and {std.row_bytes}-byte row")
        if self.level == "bankgroup" and "tCCDSB" not in std.timings:
            raise ValueError(f"bank-group MACs need a tCCDSB timing; {std.name} has none")
        if self.level == "buffer" and self.mac_spacing_cycles != std.timings["tBL"].cycles:
            raise ValueError(f"buffer-die MACs are spaced by the data bus (tBL = {std.timings['tBL'].cycles})")
        if (self.global_buffer_bytes is None) != (self.mac_registers_per_bank is None):
            raise ValueError("global_buffer_bytes and mac_registers_per_bank come together (the buffer-refill model "
                             "needs both)")
        if self.global_buffer_bytes is not None:
            if self.global_buffer_bytes % std.access_bytes or self.global_buffer_bytes % self.dtype_bytes:
                raise ValueError(f"global_buffer_bytes {self.global_buffer_bytes} is not a whole number of "
                                 f"{std.access_bytes}-byte WRGB bursts")
            if self.level != "bank" or "tCWLGB" not in std.timings:
                raise ValueError(f"a global buffer needs bank-level all-bank MACs and the standard's WRGB timing "
                                 f"(tCWLGB); {std.name} at level {self.level} has "
                                 f"{'no tCWLGB' if 'tCWLGB' not in std.timings else 'the wrong level'}")
        if self.pim_ops == "op_per_byte" and self.op_per_byte_limit is None:
            raise ValueError("pim_ops op_per_byte needs op_per_byte_limit")
        return self

    @property
    def dram(self):
        from accelsim.hardware.dram_sets import standard

        return standard(self.standard)

    @property
    def channels_per_device(self) -> int:
        return self.channels or self.dram.organization["channel"]

    @property
    def total_channels(self) -> int:
        return self.devices * self.channels_per_device

    @property
    def lanes(self) -> int:
        """MACs one bank read feeds (one column of ``access_bytes``)."""
        return self.dram.access_bytes // self.dtype_bytes

    def timings(self) -> dict[str, int]:
        """The standard's cycles with this placement's MAC spacing (tCCDAB for all-bank MACs,
        tCCDSB for AttAcc's bank-group MACs; per-bank MACs keep the standard's tBL/tCCD)."""
        key = {"bankgroup": "tCCDSB", "buffer": None}.get(self.level, "tCCDAB")
        return self.dram.cycles() | ({key: self.mac_spacing_cycles} if key else {})

    @property
    def mac_command_bytes(self) -> int:
        return self.banks_per_mac_command * self.dram.access_bytes

    @property
    def internal_bytes_per_s(self) -> float:
        """Peak bytes the MAC units read: every channel, one MAC command per spacing."""
        return self.total_channels * self.mac_command_bytes / (self.mac_spacing_cycles * self.dram.tck_s)

    @property
    def capacity_bytes(self) -> int:
        return self.total_channels * self.dram.banks_per_channel * self.dram.bank_bytes()


register_kind("pim")(PimSpec)
