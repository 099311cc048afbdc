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
    design: str = typer.Option("", help=DESIGN_HELP + "; or give --mapping."),
    model: str = typer.Option(..., help="bert-base (or bert), trxl, t5-small or xlm (the FuseMax artifact's models)."),
    seq: int = typer.Option(..., help="Sequence length (keys = queries); need not be a multiple of the tile."),
    batch: int = typer.Option(64, help="Batch size (the artifact uses 64)."),
    hardware: str = typer.Option("", help="Spatial preset or YAML; default: the design's published hardware."),
    end_to_end: bool = typer.Option(False, "--end-to-end", help="Also simulate the layer's linear GEMMs."),
    mapping_file: str = typer.Option("", "--mapping", help="Replay a saved mapping (accelsim map fusemax "
                                                           "--save-mapping) instead of a published design."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Simulate one attention layer tile by tile: latency, DRAM traffic, energy, utilization, buffer."""
    from accelsim.engines.spatial import report
    from accelsim.engines.spatial_linear import linear_report
    from accelsim.hardware import load_hardware
    from accelsim.mapping import Mapping
    from mappers.fusemax import DESIGN_HARDWARE, DESIGNS, mapped_graph, published_mapping
    from workloads.attention import attention_model

    if bool(design) == bool(mapping_file):
        raise AccelsimError("give a published design or a saved mapping (one of them)", field="design",
                            allowed=[*DESIGNS, "--mapping FILE"])
    if design and design not in DESIGNS:
        raise AccelsimError(f"unknown design {design!r}", field="design", allowed=DESIGNS)
    if seq <= 0 or batch <= 0:
        raise AccelsimError("must be positive", field="seq" if seq <= 0 else "batch")
    m = attention_model(model)
    s = m.shape(seq, batch)
    if mapping_file:
        mapping = Mapping.load(mapping_file)
        hw = load_hardware(hardware or mapping.hardware, kind="spatial")
        design = str(mapping.meta.get("design", "mapped"))
    else:
        hw = load_hardware(hardware or DESIGN_HARDWARE[design], kind="spatial")
        mapping = published_mapping(design, hw, s)
    rep = report(mapped_graph(s, mapping), hw, mapping, workload=f"{m.name}-attention")
    plan = rep.meta["plan"]
    t = rep.totals
    doc = {"design": design, "model": m.name, "seq": seq, "batch": batch, "hardware": hw.name,
           "latency_s": t["latency_s"], "dram_bytes": t["dram_bytes"], "energy_pj": t["energy_pj"],
           "util_2d": t["util_2d"], "util_1d": t["util_1d"], "buffer_bytes_needed": t["buffer_bytes_needed"],
           "buffer_bytes_used": t["buffer_bytes_used"], "area_um2": t["area_um2"],
           "spill_fraction": t["spill_fraction"], "plan": plan,
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
              f"tile {plan['p0']}x{plan['m0']}, p1 {plan['p1']}", markup=False, highlight=False)
    if end_to_end:
        out.print(f"  end to end (attention + linear): {doc['end_to_end_latency_s']:.6g} s", markup=False)
