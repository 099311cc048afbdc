"""``accelsim roofline``: a whole model, one phase, on a GPU-like device."""
from __future__ import annotations

import typer

from accelsim.cli import app, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError


@app.command("roofline")
def roofline_command(
    model: str = typer.Option(..., help="Zoo model name, CNN/NAS network name (`accelsim workloads list`), ModelConfig "
                                        "YAML, Hugging Face config.json, or an .onnx file (networks and .onnx files are "
                                        "costed as given; phase, batch, seq, context and tp do not apply)."),
    device: str = typer.Option(..., "--hardware", "--device", help="GPU preset name (accelsim hardware list --kind gpu) or YAML path."),
    phase: str = typer.Option("decode", help="prefill or decode."),
    batch: int = typer.Option(1, help="Sequences in the batch."),
    seq: int = typer.Option(None, help="Prompt length (prefill; default 512); encoder length for encoder-decoders. "
                                       "Refused for a decoder-only decode (use --context)."),
    context: int = typer.Option(None, help="Tokens already in the KV cache (decode only; default 2048)."),
    dim: list[str] = typer.Option(None, "--dim", help="An .onnx model's dynamic dimension, name=N (repeat for each)."),
    allow_long_context: bool = typer.Option(False, "--allow-long-context",
                                            help="Run a rotary model past its trained max_position_embeddings (you "
                                                 "extend it, e.g. YaRN); recorded in the JSON."),
    tp: int = typer.Option(1, help="Tensor-parallel degree."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    top: int = typer.Option(12, help="Operators to list in the text output (largest time first)."),
    fused_attention: bool = typer.Option(True, "--fused-attention/--unfused-attention",
                                         help="Keep attention scores on chip (FlashAttention) or write them to DRAM."),
    compute_efficiency: float = typer.Option(None, help="Override the device's achievable fraction of peak FLOP/s."),
    memory_efficiency: float = typer.Option(None, help="Override the device's achievable fraction of bandwidth."),
) -> None:
    """Roofline time of one prefill or decode step: each Einsum bounded by compute, memory or link."""
    from accelsim.engines.roofline import roofline
    from accelsim.fieldchecks import MIN_EFFICIENCY
    from accelsim.hardware.base import spec_from_dict
    from accelsim.hardware import load_hardware
    from workloads.models import load_model
    from workloads.transformer import PHASES, build_model

    if phase not in PHASES:
        raise AccelsimError(f"unknown phase {phase!r}", field="phase", allowed=PHASES)
    if top < 0:
        raise AccelsimError(f"must be a non-negative integer, got {top}", field="top")
    hw = load_hardware(device, kind="gpu")
    overrides = {k: v for k, v in (("compute_efficiency", compute_efficiency),
                                   ("memory_efficiency", memory_efficiency)) if v is not None}
    for k, v in overrides.items():
        if not MIN_EFFICIENCY <= v <= 1:  # below 0.1% a "peak" means nothing (accelsim.fieldchecks)
            raise AccelsimError(f"must be in [{MIN_EFFICIENCY}, 1], got {v}", field="--" + k.replace("_", "-"))
    if overrides:
        hw = spec_from_dict(hw.model_dump(mode="json") | overrides, source=hw.name)
    from accelsim.cli.model_run import parse_dims, refuse_sizes_of_fixed_graph

    from workloads.cnn import NETWORKS, build_network

    onnx_dims = parse_dims(dim, model)
    if model.endswith(".onnx"):
        from workloads.importers.onnx_graph import graph_from_onnx

        refuse_sizes_of_fixed_graph("an .onnx file", batch=batch, seq=seq, context=context, tp=tp)
        graph = graph_from_onnx(model, dims=onnx_dims)
        name, phase, batch, seq, context, tp = graph.name, "onnx", None, None, None, None
        cfg = None
    elif model in NETWORKS:  # a CNN/NAS network of `accelsim workloads list`: one inference, as built
        refuse_sizes_of_fixed_graph(f"the network {model}", batch=batch, seq=seq, context=context, tp=tp)
        graph = build_network(model)
        name, phase, batch, seq, context, tp = model, "network", None, None, None, None
        cfg = None
    else:
        from accelsim.cli.model_run import phase_lengths

        cfg = load_model(model)
        name = cfg.name
        seq, context = phase_lengths(phase, seq, context, cfg.architecture)
        graph = build_model(cfg, phase, batch=batch, seq=seq, context=context, tp=tp, fused_attention=fused_attention,
                            allow_long_context=allow_long_context)
    report = roofline(graph, hw)
    t = report.totals
    if as_json:
        doc = dict(model=name, device=hw.name, phase=phase, batch=batch, seq=seq, tp=tp,
                   total_s=t["total_s"], flops=t["flops"], bytes=t["bytes"], comm_bytes=t["comm_bytes"],
                   bound=t["bound"], bytes_by_role=t["bytes_by_role"], time_by_part_s=t["time_by_part_s"],
                   resident_bytes=t["resident_bytes"], fits_memory=t["fits_memory"],
                   fused_attention=fused_attention, compute_efficiency=hw.compute_efficiency,
                   dtype_substitutions=report.meta["dtype_substitutions"],
                   memory_efficiency=hw.memory_efficiency,
                   time_by_bound_s={b: t[f"{b}_bound_s"] for b in ("compute", "memory", "communication")},
                   operators=[{k: row[k] for k in ("name", "kind", "count", "flops", "bytes", "time_s", "bound",
                                                   "compute_s", "memory_s", "comm_s")} for row in report.layers])
        if phase != "prefill":  # prefill has no cache: echoing the unused --context would mislead
            doc["context"] = context
        if phase == "decode" and cfg is not None and cfg.architecture != "encoder-decoder":
            doc["seq"] = None  # a decoder-only decode step has no prompt length
        if cfg is not None:  # what the element size rests on, and the length assumptions
            doc.update(dtype_bytes=cfg.dtype_bytes, dtype_source=cfg.dtype_source, sliding_window=cfg.sliding_window,
                       max_position_embeddings=cfg.max_position_embeddings, allow_long_context=allow_long_context)
        out.print(dumps_json(doc, indent=2), markup=False, highlight=False)
        return
    # each phase shows only the length it uses: prefill the prompt, decode the cached context
    length = f"context={context}" if phase == "decode" else f"seq={seq}"
    setting = {"onnx": "(onnx graph)", "network": "(one inference)"}.get(phase, f"{phase} batch={batch} {length} tp={tp}")
    out.print(f"{name} {setting} on {hw.name}: "
              f"{t['total_s'] * 1e3:.3f} ms, {t['flops'] / 1e12:.3f} TFLOP, {t['bytes'] / 1e9:.3f} GB, "
              f"mostly {t['bound']}-bound", markup=False, highlight=False)
    if cfg is not None and cfg.dtype_source == "assumed":
        out.print(f"note: {name} states no element size (no torch_dtype); assumed {cfg.dtype_bytes} bytes (fp16/bf16)",
                  markup=False, highlight=False)
    for size, why in report.meta["dtype_substitutions"].items():
        out.print(f"note: {size} matrix multiplies {why}", markup=False, highlight=False)
    if not t["fits_memory"]:  # capacities are binary (accelsim/hardware/gpu.py): print GiB
        out.print(f"note: weights + KV cache need {t['resident_bytes'] / 2**30:.2f} GiB per device, more than "
                  f"{hw.name}'s {hw.memory.capacity_bytes / 2**30:.2f} GiB (try a larger --tp)", markup=False,
                  highlight=False)
    rows = sorted(report.layers, key=lambda r: -r["time_s"])[:top]
    out.print(f"{'operator':<34} {'x':>3} {'GFLOP':>10} {'MB':>10} {'ms':>9} bound", markup=False)
    for r in rows:
        out.print(f"{r['name'][:34]:<34} {r['count']:>3} {r['flops'] / 1e9:>10.3f} {r['bytes'] / 1e6:>10.3f} "
                  f"{r['time_s'] * 1e3:>9.4f} {r['bound']}", markup=False, highlight=False)
