"""``accelsim pim attention``: one decode-attention batch in one HBM3 stack, AttAcc's setting."""
from __future__ import annotations

from accelsim.cli import jsonout

import typer

from accelsim.cli import group, out
from accelsim.errors import AccelsimError

pim_app = group("pim", "Processing-in-memory: command-level DRAM-PIM simulation.")

LEVEL_NAMES = ("bank", "bankgroup", "buffer")


@pim_app.command("attention")
def attention_command(
    device: str = typer.Option("hbm3-pim", "--hardware", "--device", help="PIM preset on an HBM3-AttAcc standard."),
    level: str = typer.Option("bank", help="bank, bankgroup or buffer (where the GEMV units sit)."),
    power_limited: bool = typer.Option(False, "--power-limited", help="AttAcc's power-constrained MAC spacing."),
    heads: int = typer.Option(..., help="(request x head) attention operations in the stack."),
    head_dim: int = typer.Option(128, help="Head dimension."),
    context: int = typer.Option(..., help="KV length L."),
    dtype_bytes: int = typer.Option(2, help="Bytes per element."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Cycles and command counts of AttAcc's score-softmax-context stream, timed per command."""
    from accelsim.engines.pim.attacc_trace import (
        AttentionCase,
        attention_stream,
        command_counts,
        split_channels,
    )
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
        out.print(jsonout.dumps(doc, indent=2), markup=False, highlight=False)
        return
    out.print(f"{level}-level AttAcc on {std.name}: {result.cycles} cycles = {doc['time_s'] * 1e6:.2f} us; "
              + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, highlight=False)


@pim_app.command("decode")
def decode_command(
    model: str = typer.Option(..., help="Zoo model name or ModelConfig YAML."),
    device: str = typer.Option("pim-gpt", "--hardware", "--device", help="PIM preset (accelsim hardware list --kind pim) or YAML path."),
    batch: int = typer.Option(1, help="Sequences in the batch."),
    context: int = typer.Option(512, help="Tokens already in the KV cache."),
    tp: int = typer.Option(1, help="Tensor-parallel degree (the graph of one device)."),
    top: int = typer.Option(8, help="Operators to list in the text output (largest time first)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """One decode step of a zoo model on a PIM device: GEMVs on PIM, the rest on the host side."""
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    for name, v in (("batch", batch), ("context", context), ("tp", tp)):
        if v < 1:
            raise AccelsimError(f"must be >= 1, got {v}", field=name)
    if top < 0:
        raise AccelsimError(f"must be >= 0, got {top}", field="top")
    hw = load_hardware(device, kind="pim")
    cfg = load_model(model)
    report = simulate(build_model(cfg, "decode", batch=batch, context=context, tp=tp), hw)
    t = report.totals
    # engine rows are one instance each; the listing gives every operator's time over its repeats
    ops = [{k: row[k] for k in ("name", "unit", "bound", "repeat", "row_hit_rate")}
           | {"total_s": row["total_s"] * row["repeat"], "bytes": row["bytes"] * row["repeat"]}
           for row in report.layers]
    if as_json:
        doc = dict(model=cfg.name, device=hw.name, batch=batch, context=context, tp=tp,
                   token_latency_s=t["token_latency_s"], tokens_per_s=t["tokens_per_s"],
                   row_hit_rate=t["row_hit_rate"], pim_bytes=t["pim_bytes"], host_bytes=t["host_bytes"],
                   energy_pj=t["energy_pj"], energy_model=report.meta["energy_model"], operators=ops)
        out.print(jsonout.dumps(doc, indent=2), markup=False, highlight=False)
        return
    hit = "n/a" if t["row_hit_rate"] is None else f"{100 * t['row_hit_rate']:.1f}%"
    energy = (f"{t['energy_pj'] * 1e-9:.3f} mJ" if t["energy_pj"] is not None else
              f"energy incomplete ({t['energy_known_pj'] * 1e-9:.3f} mJ known; no numbers for "
              f"{', '.join(report.core.energy_unknown)})")
    out.print(f"{cfg.name} decode batch={batch} context={context} tp={tp} on {hw.name}: "
              f"{t['token_latency_s'] * 1e3:.3f} ms/token, {t['tokens_per_s']:.1f} tokens/s, row hits {hit}, "
              f"{energy}", markup=False, highlight=False)
    for row in sorted(ops, key=lambda r: -r["total_s"])[:top]:
        out.print(f"  {row['name']:28} {row['unit']:8} {row['bound']:24} {row['total_s'] * 1e6:10.2f} us",
                  markup=False, highlight=False)
