"""``accelsim wafer llm|gemm|gemv``: LLMs and distributed kernels on a wafer-scale mesh."""
from __future__ import annotations

import typer

from accelsim.cli import group, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

wafer = group("wafer", "Wafer-scale mesh (Cerebras WSE-style): LLM placement, MeshGEMM and MeshGEMV.")


def parse_grid(text: str | None) -> int | None:
    """``NxN`` (square grids only: the kernels shift along rings of equal length)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) < 1:
        raise AccelsimError(f"cannot read grid {text!r}", field="grid", allowed="NxN, e.g. 360x360")
    if parts[0] != parts[1]:
        raise AccelsimError(f"grid {text!r} is not square", field="grid", allowed="NxN with equal sides")
    return int(parts[0])


def _print(doc: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        out.print(dumps_json(doc, indent=2), markup=False, highlight=False)
    else:
        for line in lines:
            out.print(line, markup=False, highlight=False)


@wafer.command("llm")
def llm_command(
    model: str = typer.Option(..., help="Zoo model name or ModelConfig YAML."),
    device: str = typer.Option("wse2", "--hardware", "--device", help="Mesh preset (accelsim hardware list --kind mesh) or YAML path."),
    phase: str = typer.Option("decode", help="prefill or decode."),
    batch: int = typer.Option(1, help="Sequences in the batch."),
    seq: int = typer.Option(4096, help="Prompt length (prefill)."),
    context: int = typer.Option(2048, help="Tokens already in the KV cache (decode)."),
    grid: str = typer.Option(None, help="Core grid per layer region, NxN; without it the mapper searches."),
    layer_at_a_time: bool = typer.Option(
        False, "--layer-at-a-time", help="WaferLLM's measurement convention: each decoder layer compiled alone on "
        "the grid (its weights + KV share must fit), step time = sum over layers; the other layers' weights are "
        "NOT resident and loading them is not charged. Default: the whole model resident."),
    allow_long_context: bool = typer.Option(False, "--allow-long-context", help="Run a rotary model past its "
                                            "trained max_position_embeddings (you extend it); recorded in the JSON."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """One prefill or decode step of a model placed on the wafer: tokens/s, grid, SRAM, time split."""
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate
    from workloads.models import load_model
    from workloads.transformer import build_model

    if phase not in ("prefill", "decode"):
        raise AccelsimError(f"unknown phase {phase!r}", field="phase", allowed=("prefill", "decode"))
    for name, value in (("batch", batch), ("seq", seq), ("context", context)):
        if value < 1:
            raise AccelsimError(f"must be a positive integer, got {value}", field=name)
    hw = load_hardware(device, kind="mesh")
    side = parse_grid(grid)
    workload = build_model(load_model(model), phase, batch=batch, seq=seq, context=context,
                           allow_long_context=allow_long_context)
    report = simulate(workload, hw, grid=side, layer_at_a_time=layer_at_a_time)
    t = report.totals
    split = report.meta["time_split_s"]
    doc = {"model": model, "device": hw.name, "phase": phase, "batch": batch,
           **({"seq": seq} if phase == "prefill" else {"context": context}),
           "convention": report.meta["convention"], "layer_at_a_time": layer_at_a_time,
           **({"per_layer": report.meta["per_layer"]} if layer_at_a_time else {}),
           **({"allow_long_context": True} if allow_long_context else {}),
           "grid": t["grid"], "regions": t["regions"], "chosen_by": report.meta["reason"],
           "tokens_per_s": t["tokens_per_s"], "latency_s": t["latency_s"], "sram_used_bytes": t["sram_used_bytes"],
           "sram_capacity_bytes": hw.sram_bytes_per_core, "sram_breakdown_bytes": report.meta["sram_breakdown_bytes"],
           "time_split_s": split, "assumptions": report.meta["assumptions"]}
    length = f"context={context}" if phase == "decode" else f"seq={seq}"
    lines = [(f"{model} {phase} batch={batch} {length} on {hw.name}: {t['tokens_per_s']:.1f} tokens/s, "
             f"latency {t['latency_s'] * 1e3:.4f} ms"),
             f"convention: {report.meta['convention']}",
             f"grid {t['grid']} x {t['regions']} region(s) — {report.meta['reason']}",
             f"SRAM per core {t['sram_used_bytes']} of {hw.sram_bytes_per_core} B "
             + ", ".join(f"{k} {v}" for k, v in report.meta["sram_breakdown_bytes"].items()),
             "time: " + ", ".join(f"{k} {v * 1e3:.4f} ms" for k, v in split.items())]
    _print(doc, as_json, lines)


def _kernel(kind: str, m: int, k: int, n: int, grid: str | None, algorithm: str, device: str, as_json: bool,
            ktree_k: int = 2, groups: int | None = None) -> None:
    from accelsim.engines.mesh.gemm import GEMM_ALGORITHMS, gemm_timing
    from accelsim.engines.mesh.gemv import GEMV_ALGORITHMS, gemv_timing
    from accelsim.hardware import load_hardware
    from mappers.wafer import candidate_grids

    allowed = GEMM_ALGORITHMS if kind == "gemm" else GEMV_ALGORITHMS
    if algorithm not in allowed:
        raise AccelsimError(f"unknown {kind} algorithm {algorithm!r}", field="algorithm", allowed=allowed)
    for name, value in (("m", m), ("k", k), ("n", n), ("ktree-k", ktree_k), ("groups", 1 if groups is None else groups)):
        if value < 1:
            raise AccelsimError(f"must be a positive integer, got {value}", field=name)
    hw = load_hardware(device, kind="mesh")
    side = parse_grid(grid)

    def run(g: int):
        if kind == "gemm":
            return gemm_timing(algorithm, m, k, n, g, hw)
        return gemv_timing(algorithm, k, n, g, hw, m=m, ktree_k=ktree_k, groups=groups)

    if side is not None:
        t, reason = run(side), "given by --grid"
    else:
        limit = min(k, n) if kind == "gemv" else min(m, k, n)
        step = max(1, min(hw.usable_width, hw.usable_height) // (8 if algorithm == "summa" else 24))
        tried, errors = [], []
        for g in candidate_grids(hw, step):
            if g > limit:
                continue
            try:
                tried.append(run(g))
            except AccelsimError as error:
                errors.append((g, error))
        if not tried:
            raise errors[-1][1] if errors else AccelsimError(
                f"no grid of {hw.name} fits a {m}x{k}x{n} {kind}", field="grid")
        t = min(tried, key=lambda x: x.total_cycles)
        reason = f"fastest of {len(tried)} candidate grids"
        if errors:
            reason += f" ({len(errors)} others did not fit: {errors[0][1].detail})"
    latency = t.total_cycles / hw.clock_hz
    doc = {"kernel": kind, "algorithm": algorithm, "device": hw.name, "m": m, "k": k, "n": n,
           "grid": f"{t.grid}x{t.grid}", "chosen_by": reason, "latency_s": latency, "total_cycles": t.total_cycles,
           "compute_cycles": t.compute_cycles, "comm_cycles": t.comm_cycles, "routing_cycles": t.routing_cycles,
           "exposed_comm_cycles": getattr(t, "exposed_comm_cycles", t.comm_cycles),
           "colours_per_router": t.colours_per_router, "sram_bytes_per_core": t.sram_bytes_per_core}
    lines = [(f"{kind} {m}x{k}x{n} {algorithm} on {hw.name} {t.grid}x{t.grid} ({reason}): "
             f"{latency * 1e3:.6f} ms = {t.total_cycles:.0f} cycles"),
             (f"compute {t.compute_cycles:.0f}, communication {t.comm_cycles:.0f} (of which relay stages "
             f"{t.routing_cycles:.0f}) cycles; {t.colours_per_router} colours at the busiest router; "
             f"{t.sram_bytes_per_core} B SRAM per core")]
    _print(doc, as_json, lines)


@wafer.command("gemm")
def gemm_command(
    m: int = typer.Option(..., help="Rows of A and C."),
    k: int = typer.Option(..., help="Columns of A, rows of B."),
    n: int = typer.Option(..., help="Columns of B and C."),
    grid: str = typer.Option(None, help="Core grid NxN; without it the fastest fitting grid is chosen."),
    algorithm: str = typer.Option("meshgemm", help="meshgemm, cannon, summa or allgather."),
    device: str = typer.Option("wse2", "--hardware", "--device", help="Mesh preset or YAML path."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """C = A @ B distributed over a core grid, timed hop by hop."""
    _kernel("gemm", m, k, n, grid, algorithm, device, as_json)


@wafer.command("gemv")
def gemv_command(
    k: int = typer.Option(..., help="Length of x, rows of W."),
    n: int = typer.Option(..., help="Columns of W, length of y."),
    m: int = typer.Option(1, help="Vectors multiplied at once."),
    grid: str = typer.Option(None, help="Core grid NxN; without it the fastest fitting grid is chosen."),
    algorithm: str = typer.Option("meshgemv", help="meshgemv (K-tree), pipelined (vendor), ring, two_phase, star."),
    device: str = typer.Option("wse2", "--hardware", "--device", help="Mesh preset or YAML path."),
    ktree_k: int = typer.Option(2, "--ktree-k", help="Levels of the K-tree (meshgemv); WaferLLM evaluates K = 2."),
    groups: int = typer.Option(None, help="First-level K-tree groups (WaferLLM's group_num); default about sqrt(P)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """y = x @ W with W in 2D tiles: local GEMV plus an allreduce along one axis."""
    _kernel("gemv", m, k, n, grid, algorithm, device, as_json, ktree_k, groups)
