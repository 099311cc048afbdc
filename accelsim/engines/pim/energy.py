"""Energy of one operator on a PIM device, by component, from the preset's cited per-event energies.

Why components: the references give energies per event, not one figure per byte (CENT's AiM
calculator: per bank activation, per all-bank MAC command, per external-bus bit, standby power;
Duplex's fork: per activation, per 32-B read, per MAC op; AttAcc: pJ/bit per data-path stage with
the cell activation folded in). Each component is present only where the preset gives its number;
a component of work the preset has no number for is None (never 0), so the report's total is None
and ``energy_known_pj`` keeps the known part (``accelsim.report.Totals``).

Components: ``pim_read`` (bytes the MAC units stream), ``pim_activate`` (bank activations: the
column commands that miss the open row, times the banks each covers, i.e. (1 - row-hit rate) x
streamed bytes / column bytes), ``pim_mac`` (MACs), ``pim_io`` (input vectors written into and
results read out of the PIM buffers over the device bus; at the host's per-byte energy where the
preset has no PIM-side figure), ``pim_background`` (standby power of the
channels while the PIM works) and ``host`` (bytes the host side moves).
"""
from __future__ import annotations

from typing import Any

from accelsim.hardware.pim import PimSpec


def pim_share(c: dict[str, Any]) -> float:
    return {"pim": 1.0, "host": 0.0}.get(c["unit"], c.get("pim_fraction", 0.0))


def op_energy(c: dict[str, Any], hw: PimSpec) -> dict[str, float | None]:
    """Energy components (pJ) of one operator's cost record ``c`` (see ``engine.pim_cost``)."""
    share = pim_share(c)
    out: dict[str, float | None] = {}
    if share:
        streamed = c["streamed_bytes"] * share
        e = hw.energy_pj_per_byte_pim
        out["pim_read"] = None if e is None else streamed * e
        if hw.energy_pj_per_activate is not None:
            misses = (1.0 - (c["row_hit_rate"] or 0.0)) * streamed / hw.dram.access_bytes
            out["pim_activate"] = misses * hw.energy_pj_per_activate
        if hw.energy_pj_per_mac is not None:
            out["pim_mac"] = c["macs"] * share * hw.energy_pj_per_mac
        # the vectors and results cross the device bus; without a PIM-side figure they cost what the
        # host's memory path costs per byte (None if that is unknown too)
        e_io = hw.energy_pj_per_io_byte if hw.energy_pj_per_io_byte is not None else hw.host.energy_pj_per_byte
        if c["io_bytes"]:
            out["pim_io"] = None if e_io is None else c["io_bytes"] * share * e_io
        if hw.background_w_per_channel is not None:
            pim_s = c["pim_s"] if c["unit"] == "pim+host" else c["time_s"]
            out["pim_background"] = hw.background_w_per_channel * hw.total_channels * pim_s * 1e12
    if share < 1.0:
        e = hw.host.energy_pj_per_byte
        out["host"] = None if e is None else c["bytes_host"] * e
    return out
