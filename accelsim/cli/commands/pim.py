"""``accelsim pim attention``: one decode-attention batch in one HBM3 stack, AttAcc's setting."""
from __future__ import annotations

import json

import typer

from accelsim.cli import group, out
from accelsim.errors import AccelsimError

pim_app = group("pim", "Processing-in-memory: command-level DRAM-PIM simulation.")

LEVEL_NAMES = ("bank", "bankgroup", "buffer")


@pim_app.command("attention")
def attention_command(
    device: str = typer.Option("hbm3-pim", help="PIM preset on an HBM3-AttAcc standard."),
    level: str = typer.Option("bank", help="bank, bankgroup or buffer (where the GEMV units sit)."),
    power_limited: bool = typer.Option(False, "--power-limited", help="AttAcc's power-constrained MAC spacing."),
    heads: int = typer.Option(..., help="(request x head) attention operations in the stack."),
    head_dim: int = typer.Option(128, help="Head dimension."),
    context: int = typer.Option(..., help="KV length L."),
    dtype_bytes: int = typer.Option(2, help="Bytes per element."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Cycles and command counts of AttAcc's score-softmax-context stream, timed per command."""
    from accelsim.engines.pim.attacc_trace import AttentionCase, attention_stream, command_counts, split_channels
    from accelsim.engines.pim.channel_sim import simulate_channel
    from accelsim.hardware import load_hardware
    from accelsim.hardware.dram_sets import standard

    if level not in LEVEL_NAMES:
        raise AccelsimError(f"unknown level {level!r}", field="level", allowed=LEVEL_NAMES)
    hw = load_hardware(device, kind="pim")
    if not hw.standard.startswith("HBM3-AttAcc"):
        raise AccelsimError(f"{device} is on {hw.standard}; AttAcc's stream needs an HBM3-AttAcc standard",
                            field="device", allowed="hbm3-pim")
    case = AttentionCase(level, heads, head_dim, context, dtype_bytes)
    std = standard("HBM3-AttAcc" if power_limited else "HBM3-AttAcc-NPC")
    stream = attention_stream(case)
    counts = command_counts(stream)
    # channel 0 receives a head in every iteration, so it is the busiest; channels share no rule
    result = simulate_channel(split_channels(stream)[0], std.cycles(), std.organization)
    doc = dict(device=hw.name, standard=std.name, level=level, power_limited=power_limited, heads=heads,
               head_dim=head_dim, context=context, dtype_bytes=dtype_bytes, cycles=result.cycles,
               time_s=result.cycles * std.tck_s, tck_ps=std.tck_ps, commands=counts,
               activates_channel0=result.activates, refreshes_channel0=result.refreshes,
               row_hit_rate=result.row_hit_rate)
    if as_json:
        out.print(json.dumps(doc, indent=2), markup=False, highlight=False)
        return
    out.print(f"{level}-level AttAcc on {std.name}: {result.cycles} cycles = {doc['time_s'] * 1e6:.2f} us; "
              + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, highlight=False)
