"""``accelsim map fusemax``: choose binding, schedule and tiling of the 1-pass cascade with CP-SAT."""
from __future__ import annotations

import typer

from accelsim.cli import err, group, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

sub = group("map", "Map workloads onto hardware with an optimizer.")


@sub.command("fusemax")
def map_fusemax_command(
    model: str = typer.Option(..., help="bert-base (or bert), trxl, t5-small or xlm."),
    seq: int = typer.Option(..., help="Sequence length."),
    batch: int = typer.Option(64, help="Batch size."),
    hardware: str = typer.Option("fusemax-cloud", help="Spatial preset or YAML."),
    objective: str = typer.Option("latency", help="latency, energy or dram."),
    stages: int = typer.Option(4, help="Stages per tile in the schedule."),
    time_limit: float = typer.Option(10.0, help="Solver time limit per tile candidate (s), > 0."),
    area_budget_um2: float = typer.Option(0.0, help="If > 0: also size the PE array under this area."),
    buffer_budget_bytes: int = typer.Option(0, help="With --area-budget-um2: buffer size for sizing."),
    save_mapping: str = typer.Option("", "--save", "--save-mapping",
                                     help="Write the chosen mapping (YAML or .json) to this path."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Optimize the mapping, then simulate it and the published FuseMax mapping side by side."""
    from accelsim.engines.spatial import report
    from accelsim.hardware import load_hardware
    from mappers.fusemax import mapped_graph, optimize, published_mapping, size_hardware
    from workloads.attention import attention_model

    from accelsim.engines.spatial.cascade import cascade_of
    from workloads.attention import one_pass

    m = attention_model(model)
    s = m.shape(seq, batch)
    max_stages = len(cascade_of(one_pass(s)).einsums)  # one Einsum per stage at most; more would be empty
    if not 1 <= stages <= max_stages:
        raise AccelsimError(f"must be between 1 and {max_stages} (the layer's Einsums; more stages would be empty)",
                            field="stages")
    if buffer_budget_bytes < 0 or buffer_budget_bytes > 2**53:
        raise AccelsimError(f"must be between 0 and 2**53, got {buffer_budget_bytes}", field="buffer-budget-bytes")
    if save_mapping:
        from accelsim.outputs import check_output_file

        check_output_file(save_mapping, "--save-mapping")  # before the solve, not after it
    hw = load_hardware(hardware, kind="spatial")
    sizing = None
    if area_budget_um2 > 0:  # size first: the mapping is then optimized on the design that fits
        with err.status("sizing the PE array under the area budget ..."):
            sizing = size_hardware(hw, s, area_budget_um2=area_budget_um2,
                                   buffer_budget_bytes=buffer_budget_bytes or None)
        hw = hw.resized(sizing[0]["pe_dim"], buffer_budget_bytes or None)
    with err.status(f"optimizing the mapping (CP-SAT, up to {time_limit:g} s per tile candidate) ..."):
        res = optimize(hw, s, objective, stages=stages, time_limit_s=time_limit)
    opt = report(mapped_graph(s, res.mapping), hw, res.mapping).totals
    doc = {"model": m.name, "seq": seq, "batch": batch, "hardware": hw.name, "objective": objective,
           "status": res.status, "primary_bound": res.primary_bound, "best_bound": res.best_bound, "gap": res.gap,
           "model_optimum": res.model_optimum, "model_value": res.value, "source": res.source,
           "plan": res.plan.describe(),
           "optimized": {k: opt[k] for k in ("latency_s", "dram_bytes", "energy_pj", "util_2d", "util_1d",
                                              "buffer_bytes_used")}}
    try:
        design = "fusemax" if "exp" in hw.array_2d.ops else "cascade"
        pub_mapping = published_mapping(design, hw, s)
        pub = report(mapped_graph(s, pub_mapping), hw, pub_mapping).totals
        doc["published"] = {"design": design, **{k: pub[k] for k in ("latency_s", "dram_bytes", "energy_pj",
                                                                    "util_2d", "util_1d")}}
    except AccelsimError as why:
        doc["published"] = {"error": str(why)}
    if save_mapping:
        res.mapping.save(save_mapping)
        doc["mapping_file"] = save_mapping
    if sizing is not None:
        doc["sizing"] = sizing
    if as_json:
        out.print(dumps_json(doc, indent=2, default=float), markup=False, highlight=False)
        return
    p = res.plan
    for row in (sizing or [])[:1]:  # the design that fits the budget comes first
        out.print(f"sized to the area budget: PE dim {row['pe_dim']} ({row['area_um2'] / 1e6:.1f} mm^2 of "
                  f"{area_budget_um2 / 1e6:.1f}), published-plan latency {row['latency_s']:.4g} s", markup=False,
                  highlight=False)
    out.print(f"{m.name} seq={seq} on {hw.name}, objective {objective}: {res.status}, chosen from {res.source}",
              markup=False)
    out.print(f"  tile {p.p0}x{p.m0}, p1 {p.p1}, stages {[list(x) for x in p.stages]}, deferred {sorted(p.deferred)}",
              markup=False, highlight=False)
    out.print(f"  binding 2D: {[e for e, u in p.binding.items() if u == '2d']}", markup=False, highlight=False)
    out.print(f"  optimized: {opt['latency_s']:.6g} s, {opt['dram_bytes'] / 1e9:.4g} GB, "
              f"2D util {opt['util_2d']:.3f}", markup=False, highlight=False)
    if "latency_s" in doc["published"]:
        pb = doc["published"]
        out.print(f"  published {pb['design']}: {pb['latency_s']:.6g} s, {pb['dram_bytes'] / 1e9:.4g} GB, "
                  f"2D util {pb['util_2d']:.3f}", markup=False, highlight=False)

