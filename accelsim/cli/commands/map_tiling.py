"""``accelsim map tiling``: the optimal loop nest of one GEMM or convolution on a multi-level memory."""
from __future__ import annotations

import typer

from accelsim.cli import err, jsonout, out
from accelsim.cli.commands.map_cosma import mapping_group
from accelsim.errors import AccelsimError


def parse_gemm(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or any(v <= 0 for v in values):
        raise AccelsimError(f"cannot read {text!r}", field="--gemm", allowed="three positive integers M,K,N")
    return values  # type: ignore[return-value]


CONV_FIELDS = ("N", "K", "C", "P", "Q", "R", "S", "stride", "dilation")


def parse_conv(text: str) -> tuple[int, ...]:
    """``N,K,C,P,Q,R,S[,stride[,dilation]]``: batch, output and input channels, output rows and
    columns, filter rows and columns (the ranks of ``accelsim.ir.conv2d``)."""
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if not 7 <= len(values) <= 9 or any(v <= 0 for v in values):
        raise AccelsimError(f"cannot read {text!r}", field="--conv",
                            allowed="seven to nine positive integers N,K,C,P,Q,R,S[,stride[,dilation]]")
    return values + (1,) * (9 - len(values))


def describe(nest) -> list[str]:
    lines = []
    for lv in nest.levels:
        loops = " ".join(f"for {r} in {f}" for r, f in lv.temporal) or "-"
        spatial = "; ".join(f"{fo} {dict(v)}" for fo, v in lv.spatial.items())
        lines.append(f"  {lv.level:<8} {loops}" + (f"   spatial: {spatial}" if spatial else ""))
    return lines


@mapping_group.command("tiling")
def tiling_command(
    gemm: str = typer.Option(None, "--gemm", help="M,K,N of C[M,N] += A[M,K] * B[K,N]."),
    conv: str = typer.Option(None, "--conv", help="N,K,C,P,Q,R,S[,stride[,dilation]] of O[n,k,p,q] += "
                             "I[n,c,p*stride+r*dilation,q*stride+s*dilation] * W[k,c,r,s] (P, Q: output size)."),
    padding: int = typer.Option(0, "--padding", help="--conv: zero rows and columns on every side of the input "
                            "(not data: never stored or moved)."),
    hardware: str = typer.Option(..., "--hardware", help="A multicore or systolic preset (or YAML path)."),
    batch: int = typer.Option(1, "--batch", help="Independent GEMMs of that shape (a batch rank)."),
    objective: str = typer.Option("latency", "--objective", help="dram, latency, energy or edp."),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Search time limit in seconds."),
    replay: str = typer.Option(None, "--replay", help="Cost this saved mapping's loop nest instead of searching."),
    no_pad: bool = typer.Option(False, "--no-pad", help="Do not also try the shape padded to multiples of 16/128."),
    no_tie_break: bool = typer.Option(False, "--no-tie-break",
                                      help="Keep the first optimum found (faster) instead of ranking ties."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    save: str = typer.Option(None, "--save", help="Write the Mapping to this YAML/JSON file."),
) -> None:
    """Choose tiles per level, loop orders and spatial unrolling (proved optimal unless timed out)."""
    from accelsim.engines.loopnest import evaluate
    from accelsim.hardware import load_hardware
    from accelsim.mapping import Mapping
    from accelsim.tiling import LoopNest, LoopProblem, validate_nest
    from mappers.tiling import (
        OBJECTIVES,
        dtype_bytes_for,
        hierarchy_for,
        map_problem,
        result_meta,
    )

    if (gemm is None) == (conv is None):
        raise AccelsimError("give exactly one of --gemm and --conv", field="--gemm/--conv")
    if padding and conv is None:
        raise AccelsimError("--padding is for --conv", field="--padding")
    shape = parse_gemm(gemm) if gemm is not None else parse_conv(conv)
    if save:
        from accelsim.outputs import check_output_file

        check_output_file(save, "--save")  # before the search, not after it
    if objective not in OBJECTIVES:
        raise AccelsimError(f"unknown objective {objective!r}", field="--objective", allowed=OBJECTIVES)
    if not time_limit > 0:
        raise AccelsimError(f"must be positive, got {time_limit}", field="--time-limit")
    if batch < 1:
        raise AccelsimError(f"must be a positive integer, got {batch}", field="--batch")
    hw = load_hardware(hardware)
    if gemm is not None:
        m, k, n = shape
        problem = LoopProblem.gemm(m, k, n, batch, dtype_bytes_for(hw))
        label = f"GEMM {m}x{k}x{n} (batch {batch})"
        shape_report = {"gemm": {"m": m, "k": k, "n": n, "batch": batch}}
    else:
        if batch != 1:
            raise AccelsimError("--batch is for --gemm; a convolution's batch is the N of --conv", field="--batch")
        problem = LoopProblem.conv(*shape, dtype_bytes=dtype_bytes_for(hw), pad=padding)
        label = "conv " + ",".join(f"{f}={v}" for f, v in zip(CONV_FIELDS, shape)) + f",padding={padding}"
        shape_report = {"conv": {**dict(zip([f.lower() if len(f) == 1 else f for f in CONV_FIELDS], shape)),
                                 "padding": padding}}
    hierarchy = hierarchy_for(hw, problem)
    if replay:
        given = Mapping.load(replay)
        if problem.name not in given.tiling:
            raise AccelsimError(f"the mapping has no loop nest for {problem.name!r}", field="mapping.tiling",
                                allowed=sorted(given.tiling) or "none")
        nest = LoopNest.from_dict(problem.name, given.tiling[problem.name])
        validate_nest(nest, problem, hierarchy)
        cost = evaluate(nest, problem, hierarchy)
        info = {"status": "given", "gap": None, "solve_s": 0.0}
    else:
        r = map_problem(problem, hw, objective, time_limit, pad=not no_pad, tie_break=not no_tie_break)
        nest, cost, info = r.nest, r.cost, result_meta(r)
    if save:
        Mapping(graph=problem.name, hardware=hw.name, tiling={problem.name: nest.to_dict()},
                meta={"mapper": "tiling", **info}).save(save)
    seconds = cost.latency_cycles / hierarchy.clock_hz
    report = {**shape_report, "hardware": hw.name, "objective": objective,
              "padded_extents": nest.extents,
              "status": info["status"], "gap": info["gap"], "solve_s": round(info["solve_s"], 4),
              "loop_nest": nest.to_dict()["levels"], "reads_bytes": cost.reads_bytes, "writes_bytes": cost.writes_bytes,
              "dram_bytes": cost.dram_bytes, "compulsory_bytes": sum(problem.compulsory_bytes().values()),
              "compute_cycles": cost.compute_cycles, "level_cycles": cost.level_cycles,
              "latency_cycles": cost.latency_cycles, "latency_s": seconds, "energy_pj": cost.energy_pj,
              "utilization": cost.utilization}
    if as_json:
        out.print(jsonout.dumps(report, indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        say = lambda s: out.print(s, markup=False, highlight=False)
        gap = "n/a" if info["gap"] is None else f"{100 * info['gap']:.2f}%"
        say(f"{label} on {hw.name}, objective {objective}: status {info['status']}, "
            f"gap {gap}, solve_s {info['solve_s']:.3f}")
        if nest.extents != problem.extents:
            say(f"padded to {nest.extents} (a partial tile computed whole; its MACs and bytes are counted)")
        say("loop nest (outermost level first, loops outer to inner):")
        for line in describe(nest):
            say(line)
        say(f"{'level':<8} {'tensor':<8} {'read_bytes':>16} {'write_bytes':>16}")
        for level in cost.reads_bytes:
            for t in cost.reads_bytes[level]:
                say(f"{level:<8} {t:<8} {cost.reads_bytes[level][t]:>16} {cost.writes_bytes[level][t]:>16}")
        say(f"DRAM bytes {cost.dram_bytes} (compulsory {report['compulsory_bytes']}); compute {cost.compute_cycles} "
            f"cycles, latency {cost.latency_cycles:.0f} cycles = {seconds * 1e3:.4f} ms, utilization "
            f"{cost.utilization:.3f}, energy {cost.energy_pj:.4g} pJ")
    if save:
        err.print(f"mapping written to {save}", markup=False, highlight=False)
