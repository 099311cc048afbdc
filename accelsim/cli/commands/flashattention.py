"""``accelsim flashattention``: HBM traffic and roofline time of standard vs FlashAttention."""
from __future__ import annotations

import typer

from accelsim.cli import app, out
from accelsim.cli.jsonout import dumps as dumps_json


@app.command("flashattention")
def flashattention_command(
    seq: int = typer.Option(1024, help="Sequence length N."),
    head_dim: int = typer.Option(64, help="Head dimension d."),
    heads: int = typer.Option(16, help="Attention heads."),
    batch: int = typer.Option(64, help="Batch size."),
    sram_bytes: int = typer.Option(192 * 1024, help="On-chip SRAM per SM (bytes)."),
    device: str = typer.Option("a100-80gb", "--hardware", "--device", help="GPU preset for the roofline time."),
    forward_only: bool = typer.Option(False, "--forward-only", help="Count the forward pass only."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """IO counts of standard attention and FlashAttention (Dao et al. 2022) and their roofline time."""
    from accelsim.engines.flashattention import compare

    res = compare(seq, head_dim, heads, batch, sram_bytes, device, backward=not forward_only)
    if as_json:
        out.print(dumps_json(res, indent=2), markup=False, highlight=False)
        return
    for name, r in res.items():
        out.print(f"{name:9s} HBM {r['hbm_bytes'] / 1e9:8.3f} GB  {r['flops'] / 1e12:7.3f} TFLOP  "
                  f"{r['time_s'] * 1e3:8.3f} ms ({r['bound']}-bound on {device})", markup=False, highlight=False)
    ratio = res["standard"]["hbm_bytes"] / res["flash"]["hbm_bytes"]
    out.print(f"FlashAttention moves {ratio:.1f}x fewer HBM bytes (B_c {res['flash']['block_c']}, "
              f"B_r {res['flash']['block_r']})", markup=False, highlight=False)
