"""Whole-model runs for the CLI: build the workload a user names, simulate it, print the Report.

Why here and not in a command: ``simulate --model`` and ``run`` both show a model's step, and
both print the same Report core, whatever engine produced it (systolic, spatial, gpu, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from accelsim.errors import AccelsimError
from accelsim.ir import ModelGraph, Part
from accelsim.report import Report

PHASES = ("prefill", "decode")
# --fold-order: "tiling" (the kind's default mapper places every GEMM) or "scalesim" (SCALE-Sim's
# fixed fold order everywhere, simulate(..., mapper="fixed")); --gemm-mapper tiling|fixed says the
# same in words that fit a spatial preset too (fixed there: FuseMax's stream-once GEMM model)
FOLD_ORDERS = ("tiling", "scalesim")
GEMM_MAPPERS = ("tiling", "fixed")
MAPPED_KINDS = ("systolic", "spatial")  # kinds whose GEMM placement the options choose


@dataclass(frozen=True)
class ModelRun:
    """What was asked for, kept next to the Report so the output can say it."""

    model: str
    phase: str
    batch: int | None
    seq: int | None
    context: int | None
    tp: int | None
    blocks: int | None
    dtype_bytes: int | None = None
    dtype_source: str | None = None  # "assumed": no source stated the element size
    allow_long_context: bool = False
    sliding_window: int | None = None


def _positive(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise AccelsimError(f"must be a positive integer, got {value}", field=name)


DEFAULT_SEQ, DEFAULT_CONTEXT = 512, 2048


def phase_lengths(phase: str, seq: int | None, context: int | None, architecture: str) -> tuple[int, int]:
    """``(seq, context)`` for a phase, refusing a length the phase does not use.

    Why refuse: ``--phase decode --seq 8192`` on a decoder-only model used to run at the default
    context and print a number for a question that was not asked. ``--seq`` is the prompt
    (prefill) and, for an encoder-decoder, the encoder length its decode cross-attends; ``--context``
    is the cache a decode step reads. ``None`` means not given (the defaults apply).
    """
    if phase == "prefill" and context is not None:
        raise AccelsimError("applies to decode only (the tokens already cached); prefill's length is --seq",
                            field="--context", allowed="--phase decode --context N, or --phase prefill --seq N")
    if phase == "decode" and seq is not None and architecture != "encoder-decoder":
        raise AccelsimError("applies to prefill (the prompt) and to an encoder-decoder's encoder length; a "
                            "decoder-only decode step's length is --context", field="--seq",
                            allowed="--phase prefill --seq N, or --phase decode --context N")
    return (DEFAULT_SEQ if seq is None else seq), (DEFAULT_CONTEXT if context is None else context)


def refuse_sizes_of_fixed_graph(what: str, *, batch: int | None, seq: int | None, context: int | None,
                                tp: int | None, blocks: int | None = None) -> None:
    """A CNN/NAS network or an .onnx file is costed as built: a size option would be ignored.

    Why refuse rather than ignore: ``--seq 4096`` on resnet50 used to print the same number as
    without it, an answer to a question that was not asked.
    """
    given = [name for name, value, default in (("--batch", batch, 1), ("--seq", seq, None),
                                                ("--context", context, None), ("--tp", tp, 1),
                                                ("--blocks", blocks, None)) if value != default]
    if given:
        raise AccelsimError(f"does not apply to {what}, which is costed as built", field=given[0],
                            allowed="a zoo model, ModelConfig YAML or config.json for sizes; "
                                    "--dim name=N for an .onnx file's dynamic dimensions")


def parse_dims(items: list[str] | None, model: str) -> dict[str, int]:
    """``--dim name=N`` options (an ONNX model's dynamic dimensions) as a dict."""
    if not items:
        return {}
    if not model.endswith(".onnx"):
        raise AccelsimError("applies to an .onnx model's dynamic dimensions only", field="--dim")
    dims: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not sep or not name or number <= 0:
            raise AccelsimError(f"expected name=N with a positive integer N, got {item!r}", field="--dim",
                                allowed="e.g. --dim batch=8 --dim sequence=128")
        dims[name] = number
    return dims


def build_workload(model: str, phase: str, *, batch: int = 1, seq: int | None = None, context: int | None = None,
                   tp: int = 1, blocks: int | None = None,
                   allow_long_context: bool = False, dims: list[str] | None = None) -> tuple[Any, ModelRun]:
    """A zoo name, ModelConfig YAML or config.json -> ModelGraph; a CNN/NAS network name or an .onnx
    file -> its Graph as given (``dims``: ``name=N`` values of an ONNX file's dynamic dimensions)."""
    onnx_dims = parse_dims(dims, model)
    sizes = dict(batch=batch, seq=seq, context=context, tp=tp, blocks=blocks)
    if model.endswith(".onnx"):
        from workloads.importers.onnx_graph import graph_from_onnx

        refuse_sizes_of_fixed_graph("an .onnx file", **sizes)
        graph = graph_from_onnx(model, dims=onnx_dims)
        return graph, ModelRun(graph.name, "onnx", None, None, None, None, None)
    from workloads.cnn import NETWORKS, build_network

    if model in NETWORKS:  # a CNN/NAS network of `accelsim workloads list`: one inference, as built
        refuse_sizes_of_fixed_graph(f"the network {model}", **sizes)
        graph = build_network(model)
        return graph, ModelRun(model, "network", None, None, None, None, None)
    if phase not in PHASES:
        raise AccelsimError(f"unknown phase {phase!r}", field="--phase", allowed=PHASES)
    for value, name in ((batch, "--batch"), (seq, "--seq"), (context, "--context"), (tp, "--tp"),
                        (blocks, "--blocks")):
        _positive(value, name)
    from workloads.models import load_model
    from workloads.transformer import build_model

    cfg = load_model(model)
    seq, context = phase_lengths(phase, seq, context, cfg.architecture)
    workload = build_model(cfg, phase, batch=batch, seq=seq, context=context, tp=tp,
                           allow_long_context=allow_long_context)
    if blocks is not None:
        # the decoder blocks: the last stack of repeated layers (an MoE model's MoE blocks, T5's decoder)
        layers = [p for p in workload.parts if p.name.endswith(("block", "decoder", "encoder"))]
        if not layers:
            raise AccelsimError("the model has no block parts", field="--blocks")
        first = layers[-1]
        workload = ModelGraph(f"{cfg.name}-{blocks}-blocks", [Part(first.name, first.graph, blocks, first.input,
                                                                  first.output)], cfg, dict(workload.meta))
    enc_dec = cfg.architecture == "encoder-decoder"
    run = ModelRun(cfg.name, phase, batch, seq if phase == "prefill" or enc_dec else None,
                   context if phase == "decode" else None, tp, blocks, cfg.dtype_bytes, cfg.dtype_source,
                   allow_long_context, cfg.sliding_window)
    return workload, run


def summary(report: Report, run: ModelRun) -> dict[str, Any]:
    """The JSON document: what ran, the Report core, tokens per second."""
    core = report.core
    assert core is not None
    tokens = None
    if run.batch is not None:
        tokens = run.batch * (run.seq if run.phase == "prefill" else 1)
    doc: dict[str, Any] = {"model": run.model, "hardware": report.hardware, "phase": run.phase, "batch": run.batch,
                           "seq": run.seq, "context": run.context, "tp": run.tp, "blocks": run.blocks,
                           "dtype_bytes": run.dtype_bytes, "dtype_source": run.dtype_source,
                           "allow_long_context": run.allow_long_context, "sliding_window": run.sliding_window,
                           **core.to_dict()}
    if tokens and core.total_s > 0:
        doc["tokens_per_s"] = tokens / core.total_s
    doc["totals"] = {k: v for k, v in report.totals.items() if not isinstance(v, (dict, list))}
    if "gemm_mapper" in report.meta:  # what placed the GEMMs (the tiling mapper or a fixed order)
        doc["gemm_mapper"] = report.meta["gemm_mapper"]
    if "convention" in report.meta:  # which measurement convention made the number (mesh engine)
        doc["convention"] = report.meta["convention"]
    return doc


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def print_model_report(report: Report, run: ModelRun, console: Console, top: int = 10) -> None:
    core = report.core
    assert core is not None
    what = f"{run.model} {run.phase}"
    if run.phase not in ("onnx", "network"):
        what += f", batch {run.batch}" + (f", seq {run.seq}" if run.seq else f", context {run.context}")
        what += f", tp {run.tp}" if run.tp and run.tp > 1 else ""
        what += f", {run.blocks} blocks only" if run.blocks else ""
    console.print(f"{what} on {report.hardware}", markup=False, highlight=False)
    if run.dtype_source == "assumed":
        console.print(f"note: the model states no element size; assumed {run.dtype_bytes} bytes (fp16/bf16)",
                      markup=False, highlight=False)
    if report.meta.get("layer_at_a_time"):  # never a silently different measurement
        console.print(f"convention: {report.meta['convention']}", markup=False, highlight=False)
    doc = summary(report, run)
    t = Table(show_header=False, box=None)
    t.add_row("latency", f"{core.total_s * 1e3:.4g} ms" + (f" ({core.total_cycles:.4g} cycles)"
                                                           if core.total_cycles is not None else ""))
    if "tokens_per_s" in doc:
        t.add_row("tokens/s", f"{doc['tokens_per_s']:.4g}")
    t.add_row("MACs", _si(core.macs, ""))
    placed = report.meta.get("gemm_mapper", {}).get("placed")
    if placed:
        t.add_row("GEMMs placed by", ", ".join(f"{k} {v}" for k, v in sorted(placed.items())))
    for level in sorted({*core.read_bytes, *core.write_bytes}):
        t.add_row(f"{level} read / write", f"{_si(core.read_bytes.get(level, 0.0), 'B')} / "
                                           f"{_si(core.write_bytes.get(level, 0.0), 'B')}")
    t.add_row("main-memory bytes by role", ", ".join(f"{k} {_si(v, 'B')}"
                                                     for k, v in sorted(core.offchip_bytes_by_role.items()) if v))
    t.add_row("busy / utilization", ", ".join(f"{u} {v:.1%}" for u, v in core.utilization.items()))
    if core.energy_pj is not None:
        t.add_row("energy", f"{core.energy_pj / 1e12:.4g} J")
    elif core.energy_known_pj:
        t.add_row("energy", f"incomplete: {core.energy_known_pj / 1e12:.4g} J known; no numbers for "
                            f"{', '.join(core.energy_unknown)}")
    else:
        t.add_row("energy", "not modelled: the preset gives no energy numbers")
    console.print(t)
    rows = sorted(report.layers, key=lambda r: -r.get("total_s", 0.0) * r.get("repeat", 1))[:top]
    if rows:
        ops = Table(title=f"largest {len(rows)} operators (time x repeat)", title_justify="left")
        for col in ("operator", "unit", "bound", "x", "time"):
            ops.add_column(col)
        for r in rows:
            ops.add_row(str(r["name"]), str(r.get("unit", "")), str(r.get("bound", "")), str(r.get("repeat", 1)),
                        f"{r.get('total_s', 0.0) * r.get('repeat', 1) * 1e3:.4g} ms")
        console.print(ops)


def simulate_model_command(model: str, hardware: str, *, phase: str, batch: int, seq: int | None,
                           context: int | None, tp: int, blocks: int | None, overlap: bool, json_out: bool,
                           csv_out: Any, timeline_out: Any = None, allow_long_context: bool = False,
                           dims: list[str] | None = None, fold_order: str = "tiling",
                           gemm_mapper: str | None = None, layer_at_a_time: bool = False) -> None:
    """``accelsim simulate --model``: one step of a model on any registered hardware kind."""
    from accelsim.cli.jsonout import dumps as dumps_json

    from accelsim.cli import out
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate

    from accelsim.outputs import check_output_file, write_output

    for path, option in ((csv_out, "--csv"), (timeline_out, "--timeline")):
        if path is not None:
            check_output_file(path, option)  # before the work: parents created, unwritable refused
    spec = load_hardware(hardware)
    workload, run = build_workload(model, phase, batch=batch, seq=seq, context=context, tp=tp, blocks=blocks,
                                   allow_long_context=allow_long_context, dims=dims)
    # only what the user asked for: an engine that has no such option says so (never ignored)
    if fold_order not in FOLD_ORDERS:
        raise AccelsimError(f"unknown fold order {fold_order!r}", field="--fold-order", allowed=FOLD_ORDERS)
    if gemm_mapper is not None and gemm_mapper not in GEMM_MAPPERS:
        raise AccelsimError(f"unknown GEMM mapper {gemm_mapper!r}", field="--gemm-mapper", allowed=GEMM_MAPPERS)
    by_fold = "fixed" if fold_order == "scalesim" else None
    if gemm_mapper is not None and by_fold is not None and gemm_mapper != by_fold:
        raise AccelsimError(f"--fold-order {fold_order} and --gemm-mapper {gemm_mapper} disagree",
                            field="--gemm-mapper", allowed="one of them, or both saying fixed")
    fixed = "fixed" in (gemm_mapper, by_fold)
    options = {**({} if overlap else {"overlap": False}), **({"timeline": True} if timeline_out else {}),
               **({"mapper": "fixed"} if fixed else {}),
               **({"layer_at_a_time": True} if layer_at_a_time else {})}  # an engine without it refuses it
    if ("mapper" in options or gemm_mapper is not None) and spec.kind not in MAPPED_KINDS:
        option = "--gemm-mapper" if gemm_mapper is not None else "--fold-order"
        raise AccelsimError(f"applies to systolic and spatial presets (their GEMM placement), not kind {spec.kind!r}",
                            field=option, allowed=f"a systolic or spatial --hardware, or no {option}")
    report = simulate(workload, spec, **options)
    if csv_out is not None:
        write_output(csv_out, report.to_csv(), "--csv")
    if timeline_out is not None:
        import pandas as pd

        write_output(timeline_out, pd.DataFrame(report.meta["timeline"]).to_csv(index=False), "--timeline")
    if json_out:
        out.print(dumps_json(summary(report, run), indent=2, default=str), markup=False, highlight=False)
    else:
        print_model_report(report, run, out)
