"""``accelsim attention``: one attention layer on a spatial accelerator (FuseMax, FLAT and ablations)."""
from __future__ import annotations

import typer

from accelsim.cli import app, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

DESIGN_HELP = ("unfused (QK through DRAM), flat (FLAT row fusion), cascade (1-pass on FLAT hardware), "
               "arch (1-pass on FuseMax hardware, no interleaving), fusemax (architecture + binding)")


@app.command("attention")
def attention_command(
    design: str = typer.Option(..., help=DESIGN_HELP),
    model: str = typer.Option(..., help="bert, trxl, t5 or xlm (the FuseMax artifact's dimensions)."),
    seq: int = typer.Option(..., help="Sequence length (keys = queries); need not be a multiple of the tile."),
    batch: int = typer.Option(64, help="Batch size (the artifact uses 64)."),
    hardware: str = typer.Option("", help="Spatial preset or YAML; default: the design's published hardware."),
    end_to_end: bool = typer.Option(False, "--end-to-end", help="Also simulate the layer's linear GEMMs."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Simulate one attention layer tile by tile: latency, DRAM traffic, energy, utilization, buffer."""
    from accelsim.engines.spatial_attention import report
    from accelsim.engines.spatial_linear import linear_report
    from accelsim.hardware import load_hardware
    from mappers.fusemax import DESIGN_HARDWARE, DESIGNS, published_plan
    from workloads.attention import attention_model

    if design not in DESIGNS:
        raise AccelsimError(f"unknown design {design!r}", field="design", allowed=DESIGNS)
    if seq <= 0 or batch <= 0:
        raise AccelsimError("must be positive", field="seq" if seq <= 0 else "batch")
    m = attention_model(model)
    hw = load_hardware(hardware or DESIGN_HARDWARE[design], kind="spatial")
    s = m.shape(seq, batch)
    plan = published_plan(design, hw, s)
    rep = report(plan, hw, s, workload=f"{m.name}-attention")
    t = rep.totals
    doc = {"design": design, "model": m.name, "seq": seq, "batch": batch, "hardware": hw.name,
           "latency_s": t["latency_s"], "dram_bytes": t["dram_bytes"], "energy_pj": t["energy_pj"],
           "util_2d": t["util_2d"], "util_1d": t["util_1d"], "buffer_bytes_needed": t["buffer_bytes_needed"],
           "buffer_bytes_used": t["buffer_bytes_used"], "area_um2": t["area_um2"],
           "spill_fraction": t["spill_fraction"], "plan": plan.describe(),
           "einsums": [{"name": r["einsum"], "unit": r["unit"], "util": r["util"]} for r in rep.layers]}
    if end_to_end:
        lin = linear_report(m, seq, hw, batch).totals
        doc["linear"] = {k: lin[k] for k in ("latency_s", "dram_bytes", "energy_pj", "util_2d")}
        doc["end_to_end_latency_s"] = t["latency_s"] + lin["latency_s"]
        doc["end_to_end_energy_pj"] = t["energy_pj"] + lin["energy_pj"]
    if as_json:
        out.print(dumps_json(doc, indent=2), markup=False, highlight=False)
        return
    out.print(f"{design} on {hw.name}: {m.name} seq={seq} batch={batch}", markup=False, highlight=False)
    out.print(f"  latency {t['latency_s']:.6g} s, DRAM {t['dram_bytes'] / 1e9:.4g} GB, energy {t['energy_pj'] / 1e12:.4g} J, "
              f"2D util {t['util_2d']:.3f}, 1D util {t['util_1d']:.3f}", markup=False, highlight=False)
    out.print(f"  buffer needed {t['buffer_bytes_needed']} B (used {t['buffer_bytes_used']} B), "
              f"tile {plan.p0}x{plan.m0}, p1 {plan.p1}", markup=False, highlight=False)
    if end_to_end:
        out.print(f"  end to end (attention + linear): {doc['end_to_end_latency_s']:.6g} s", markup=False)
