"""``accelsim simulate``: a whole model on any hardware kind, or GEMM/convolution layers on a
systolic accelerator.

``--model`` runs a zoo model (or a ModelConfig YAML, config.json, .onnx) through
``accelsim.simulate`` on any preset (systolic, spatial, gpu, ...). Without it the command takes
SCALE-Sim's own inputs (``--scalesim-config`` and ``--topology``) or a systolic preset with a
topology file and/or quick ``--gemm M,K,N`` shapes, the exact SCALE-Sim-compatible path.
"""
from __future__ import annotations

from pathlib import Path

import typer

from accelsim.cli import app, out
from accelsim.errors import AccelsimError

DEFAULT_HARDWARE = "tpu-v1"


def parse_gemm(text: str, index: int) -> "GemmLayer":  # noqa: F821 (imported lazily: start-up time)
    """``M,K,N`` (or ``MxKxN``) as a named GEMM layer."""
    from accelsim.engines.systolic import MAX_DIM, GemmLayer
    from accelsim.ir import GemmShape

    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    allowed = "three positive integers in the order M,K,N (ifmap M x K times filter K x N), e.g. 512,768,3072"
    if len(parts) != 3:
        raise AccelsimError(f"expected M,K,N, got {text!r}", field="--gemm", allowed=allowed)
    try:
        m, k, n = (int(p) for p in parts)
    except ValueError:
        raise AccelsimError(f"not integers: {text!r}", field="--gemm", allowed=allowed) from None
    if min(m, k, n) <= 0:
        raise AccelsimError(f"dimensions must be positive, got {text!r}", field="--gemm", allowed=allowed)
    if max(m, k, n) > MAX_DIM:
        raise AccelsimError(f"dimension too large in {text!r}", field="--gemm", allowed=f"at most 2**53 = {MAX_DIM}")
    name = f"gemm{index}_{m}x{k}x{n}"
    return GemmLayer(name, GemmShape(m=m, k=k, n=n, ifmap=f"{name}.ifmap", filter=f"{name}.filter",
                                     ofmap=f"{name}.ofmap"))


@app.command("simulate")
def simulate_command(
    scalesim_config: Path = typer.Option(
        None, "--scalesim-config", help="A SCALE-Sim .cfg file (array size, SRAM sizes in KiB, dataflow, "
        "bandwidth in words/cycle with 1-byte words). Mutually exclusive with --hardware."),
    hardware: str = typer.Option(
        None, "--hardware", help=f"A systolic hardware preset name (see `accelsim hardware list`) or a path to a "
        f"hardware YAML file. Default when neither this nor --scalesim-config is given: {DEFAULT_HARDWARE}."),
    topology: Path = typer.Option(
        None, "--topology", help="A SCALE-Sim topology CSV: convolution rows 'name, IFMAP Height, IFMAP Width, "
        "Filter Height, Filter Width, Channels, Num Filter, Strides,' or GEMM rows 'name, M, N, K,' (format read "
        "from the header; the trailing comma is optional)."),
    topology_kind: str = typer.Option(
        None, "--topology-kind", help="Force the topology format instead of reading it from the header: conv or gemm."),
    gemm: list[str] = typer.Option(
        None, "--gemm", help="A GEMM given in the order M,K,N: ifmap M x K times filter K x N (e.g. 512,768,3072). "
        "Note: topology CSV GEMM rows use SCALE-Sim's order M, N, K instead. Positive integers up to 2**53; repeat "
        "for several layers. Runs after the topology's layers."),
    dataflow: str = typer.Option(
        None, "--dataflow", help="Override the hardware's dataflow: os, ws or is."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the full report as JSON (per layer and total: compute_cycles, stall_cycles, "
        "total_cycles, overall_utilization, mapping_efficiency, sram_reads/sram_writes per operand in words, "
        "dram_bytes per operand, ...) instead of tables."),
    csv_out: Path = typer.Option(
        None, "--csv", help="Also write the per-layer table (nested fields flattened) to this CSV file."),
    model: str = typer.Option(
        None, "--model", help="Run a whole model instead of layers: a zoo name (accelsim workloads list), a "
        "ModelConfig YAML, a Hugging Face config.json or an .onnx file. Works on every hardware kind."),
    phase: str = typer.Option("decode", "--phase", help="With --model: prefill or decode."),
    batch: int = typer.Option(1, "--batch", help="With --model: sequences in the batch."),
    seq: int = typer.Option(None, "--seq", help="With --model: prompt length (prefill; default 512), or an "
                            "encoder-decoder's encoder length. Refused for a decoder-only decode (use --context)."),
    context: int = typer.Option(None, "--context", help="With --model, decode only: tokens already in the KV cache "
                                "(default 2048)."),
    dim: list[str] = typer.Option(None, "--dim", help="With --model FILE.onnx: a dynamic dimension's value, "
                                  "name=N (repeat for each)."),
    allow_long_context: bool = typer.Option(False, "--allow-long-context", help="With --model: run a rotary model "
                                            "past its trained max_position_embeddings (you extend it, e.g. YaRN); "
                                            "recorded in the JSON."),
    tp: int = typer.Option(1, "--tp", help="With --model: tensor-parallel degree (all-reduces use the links)."),
    blocks: int = typer.Option(None, "--blocks", help="With --model: simulate N decoder blocks alone (no "
                               "embedding, no LM head), to compare one layer with a measurement."),
    overlap: bool = typer.Option(True, "--overlap/--no-overlap", help="With --model: overlap DMA with compute "
                                 "(tile-level simulation) or run every task one after another."),
    fold_order: str = typer.Option(None, "--fold-order", help="With --model on a systolic preset: tiling (the "
                                   "loop-nest tiling mapper places each GEMM; it keeps SCALE-Sim's fold order where "
                                   "no nest beats it; the default) or scalesim (SCALE-Sim's fixed fold order for every "
                                   "GEMM; on a spatial preset: the FuseMax stream-once model, as --gemm-mapper fixed). "
                                   "--scalesim-config/--topology/--gemm always use the fold order."),
    gemm_mapper: str = typer.Option(None, "--gemm-mapper", help="With --model on a systolic or spatial preset: "
                                    "tiling (the kind's loop-nest tiling mapper places each GEMM; the default) or fixed "
                                    "(systolic: SCALE-Sim's fold order, the same as --fold-order scalesim; spatial: the "
                                    "FuseMax artifact's model, every operand streamed once whatever the buffer holds)."),
    layer_at_a_time: bool = typer.Option(False, "--layer-at-a-time", help="With --model on a mesh preset: "
                                         "WaferLLM's convention, each layer compiled alone and the step summed over "
                                         "layers; other layers' weights not resident (their loading not charged)."),
    timeline: Path = typer.Option(None, "--timeline", help="With --model on a systolic or spatial preset: write "
                                  "every task (unit, start and end in cycles, label, kind) of one run of each part to "
                                  "this CSV, for `accelsim plot timeline`."),
) -> None:
    """Simulate a whole model on any hardware kind (--model), or GEMM/convolution layers on a systolic array
    (cycle-level, SCALE-Sim compatible).

    Stall-free compute cycles, mapping efficiency and SRAM ifmap/filter reads equal SCALE-Sim 3.0's;
    DRAM traffic and stalls come from accelsim's double-buffer model (see the README).
    """
    from accelsim.cli.systolic_view import print_systolic_report
    from accelsim.engines.systolic import GemmLayer, simulate_layers
    from accelsim.hardware import load_hardware
    from accelsim.hardware.systolic import DATAFLOWS, SystolicAccelerator
    from accelsim.scalesim_io import ignored_settings, read_scalesim_config, read_topology

    if model is not None:
        from accelsim.cli.model_run import simulate_model_command

        if scalesim_config is not None or topology is not None or gemm or dataflow is not None:
            raise AccelsimError("--model runs a whole model; it does not combine with layer inputs",
                                field="--model", allowed="--model with --hardware, or layers without --model")
        simulate_model_command(model, hardware or DEFAULT_HARDWARE, phase=phase, batch=batch, seq=seq,
                               context=context, tp=tp, blocks=blocks, overlap=overlap, json_out=json_out,
                               csv_out=csv_out, timeline_out=timeline, allow_long_context=allow_long_context, dims=dim,
                               fold_order=fold_order or "tiling", gemm_mapper=gemm_mapper,
                               layer_at_a_time=layer_at_a_time)
        return
    if gemm_mapper == "tiling":
        raise AccelsimError("layers from --topology/--gemm/--scalesim-config run in SCALE-Sim's fold order (the "
                            "exact SCALE-Sim-compatible path); the tiling mapper places a --model's GEMMs",
                            field="--gemm-mapper", allowed="--gemm-mapper with --model, or fixed")
    if gemm_mapper not in (None, "fixed"):
        raise AccelsimError(f"unknown GEMM mapper {gemm_mapper!r}", field="--gemm-mapper", allowed=("tiling", "fixed"))
    if fold_order == "tiling":
        raise AccelsimError("layers from --topology/--gemm/--scalesim-config run in SCALE-Sim's fold order (the "
                            "exact SCALE-Sim-compatible path); the tiling mapper places a --model's GEMMs",
                            field="--fold-order", allowed="--fold-order with --model, or scalesim")
    if scalesim_config is not None and hardware is not None:
        raise AccelsimError("give one of them, not both", field="--scalesim-config/--hardware")
    if csv_out is not None:
        from accelsim.outputs import check_output_file

        check_output_file(csv_out, "--csv")
    if scalesim_config is not None:
        hw = read_scalesim_config(scalesim_config)
        ignored = ignored_settings(scalesim_config)
        if ignored:  # one line on stderr: the run goes on, but the user knows what was not modelled
            from accelsim.cli import err

            err.print(f"accelsim: warning: {scalesim_config}: not modelled, ignored: {', '.join(ignored)}",
                      markup=False, highlight=False)
    else:
        spec = load_hardware(hardware or DEFAULT_HARDWARE, kind="systolic")
        assert isinstance(spec, SystolicAccelerator)
        hw = spec
    if dataflow is not None:
        if dataflow not in DATAFLOWS:
            raise AccelsimError(f"unknown dataflow {dataflow!r}", field="--dataflow", allowed=DATAFLOWS)
        hw = hw.model_copy(update={"array": hw.array.model_copy(update={"dataflow": dataflow})})
    layers: list[GemmLayer] = []
    if topology is not None:
        layers.extend(read_topology(topology, kind=topology_kind))
    elif topology_kind is not None:
        raise AccelsimError("only applies with --topology", field="--topology-kind")
    for i, text in enumerate(gemm or []):
        layers.append(parse_gemm(text, i))
    if not layers:
        raise AccelsimError("nothing to simulate", field="--topology/--gemm",
                            allowed="--topology FILE.csv and/or one or more --gemm M,K,N")
    workload = topology.stem if topology is not None else "gemms"
    report = simulate_layers(layers, hw, workload=workload)
    if csv_out is not None:
        from accelsim.outputs import write_output

        write_output(csv_out, report.to_csv(), "--csv")
    if json_out:
        from accelsim.cli.jsonout import dumps as dumps_json
        from accelsim.report import _jsonable

        out.print(dumps_json(report.to_dict(), indent=2, default=_jsonable), markup=False, highlight=False,
                  soft_wrap=True)
    else:
        print_systolic_report(report, out)
