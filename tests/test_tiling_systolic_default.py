"""The tiling mapper as the systolic kind's default: exact on small instances, never worse than
SCALE-Sim's fold order, and the fold order still there when asked for."""
from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.systolic import simulate_gemm
from accelsim.engines.systolic.nest import (
    STATIONARY_ROLE,
    array_cycles,
    array_hierarchy,
    fold_order_nest,
    replay,
)
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.systolic import SystolicAccelerator
from accelsim.ir import GemmShape, Graph, gemm
from accelsim.simulate import simulate
from accelsim.tiling import LoopProblem, tensor_roles
from mappers.tiling.systolic import best_array_nest, map_array_gemm
from tests.tiling_bruteforce import best_nest
from tests.tiling_replay import replay as replay_elementwise

SYSTOLIC = ("tpu-v1", "tpu-v4", "edge-npu", "scalesim-scale", "scalesim-eyeriss", "scalesim-google")


def tiny(rows: int, cols: int, dataflow: str, ifmap: int, filt: int, ofmap: int, bw: float = 2.0
         ) -> SystolicAccelerator:
    return SystolicAccelerator.model_validate({
        "name": "tiny", "clock_hz": 1e9, "word_bytes": 1, "array": {"rows": rows, "cols": cols, "dataflow": dataflow},
        "sram": {"ifmap_bytes": ifmap, "filter_bytes": filt, "ofmap_bytes": ofmap},
        "dram": {"name": "dram", "bandwidth_bytes_per_s": bw * 1e9}})


def folds_by_walking(nest, problem, spec) -> int:
    """Count stationary-tile changes by walking every temporal iteration (no run formula)."""
    role = STATIONARY_ROLE[spec.array.dataflow]
    stationary = next(t for t, r in zip(problem.tensors, tensor_roles(problem).values()) if r == role)
    loops = [x for lv in nest.levels for x in lv.temporal]
    keep = [i for i, (r, _) in enumerate(loops) if r in stationary.ranks]
    folds, last = 0, None
    for point in itertools.product(*(range(f) for _, f in loops)):
        tile = tuple(point[i] for i in keep)
        folds += tile != last
        last = tile
    return folds


@pytest.mark.parametrize("preset", SYSTOLIC)
@pytest.mark.parametrize("folds_r, folds_c, stream", [(3, 2, 700), (16, 5, 4096), (1, 1, 1)])
def test_fold_order_nest_has_simulate_gemm_cycles(preset, folds_r, folds_c, stream):
    """SCALE-Sim's schedule written as a nest: the array cycle model gives simulate_gemm's folds and
    busy cycles (extents that are multiples of the array, so the fold order is a divisor nest)."""
    from accelsim.engines.systolic.nest import DATAFLOW_RANKS

    hw = load_hardware(preset)
    sr, sc, t = DATAFLOW_RANKS[hw.array.dataflow]
    ext = {sr: folds_r * hw.array.rows, sc: folds_c * hw.array.cols, t: stream}
    dims = (ext["m"], ext["k"], ext["n"])
    problem = LoopProblem.gemm(*dims, dtype_bytes=hw.word_bytes)
    nest = fold_order_nest(problem, hw)
    assert nest is not None
    ref = simulate_gemm(GemmShape(*dims), hw)
    folds, busy = array_cycles(nest, problem, hw)
    assert folds == ref["folds"] == folds_r * folds_c
    assert busy == ref["busy_cycles"]


def _best_by_enumeration(problem: LoopProblem, spec):
    """(key, nest) of the best nest of every one the hierarchy admits, each replayed by the engine;
    None when nothing fits. The key is the mapper's: estimated time, then DRAM bytes, then cycles."""
    def cost(nest):
        c = replay(nest, problem, spec)
        return (max(c.busy_cycles, c.dram_bytes / spec.dram_bytes_per_cycle), c.dram_bytes, c.busy_cycles), c

    best = best_nest(problem, array_hierarchy(spec), cost)
    return None if best is None else best[:2]


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([1, 2, 3, 4, 6]), k=st.sampled_from([1, 2, 4, 6]), n=st.sampled_from([1, 2, 3, 4]),
       rows=st.integers(1, 3), cols=st.integers(1, 3), dataflow=st.sampled_from(["os", "ws", "is"]),
       caps=st.tuples(*(st.sampled_from([2, 4, 8, 16, 64]),) * 3), bw=st.sampled_from([0.25, 1.0, 8.0]))
def test_closed_form_equals_enumerating_every_nest(m, k, n, rows, cols, dataflow, caps, bw):
    """The mapper's optimum == the best of every nest of the hierarchy (``tiling_bruteforce``),
    each replayed by the engine; folds also checked by walking every iteration."""
    spec = tiny(rows, cols, dataflow, *caps, bw=bw)
    problem = LoopProblem.gemm(m, k, n, dtype_bytes=1)
    hierarchy = array_hierarchy(spec)
    best = _best_by_enumeration(problem, spec)
    found = best_array_nest(problem, spec)
    assert (found is None) == (best is None)
    if found is None:
        return
    nest, key = found
    c = replay(nest, problem, spec)
    assert key == pytest.approx(best[0], rel=1e-12)
    assert (max(c.busy_cycles, c.dram_bytes / spec.dram_bytes_per_cycle), c.dram_bytes, c.busy_cycles) == \
        pytest.approx(key, rel=1e-12)  # the engine's replay agrees with the mapper's closed form
    assert c.folds == folds_by_walking(nest, problem, spec)
    reads, writes, _ = replay_elementwise(nest, problem, hierarchy)  # element by element
    assert reads["dram"] == c.cost.reads_bytes["dram"] and writes["dram"] == c.cost.writes_bytes["dram"]


@pytest.mark.parametrize("preset", SYSTOLIC)
@pytest.mark.parametrize("dims", [(1, 4096, 4096), (512, 768, 3072), (300, 100, 700), (4096, 4096, 11008),
                                  (49, 4608, 512)])
def test_never_worse_than_the_fold_order(preset, dims):
    """Per GEMM through the whole engine: DRAM bytes and the objective never above the fold order's."""
    hw = load_hardware(preset)
    m, k, n = dims
    b = 1
    g = Graph("g", [gemm("g", m, k, n, dtype_bytes=hw.word_bytes)])
    fixed, mapped = simulate(g, hw, mapper="fixed"), simulate(g, hw)
    bw = hw.dram.bytes_per_cycle(hw.clock_hz)
    assert mapped.core.dram_bytes <= fixed.core.dram_bytes
    busy_f, busy_m = fixed.core.busy_cycles["matrix"], mapped.core.busy_cycles["matrix"]
    assert max(busy_m, mapped.core.dram_bytes / bw) <= max(busy_f, fixed.core.dram_bytes / bw) * (1 + 1e-12)
    assert mapped.core.dram_bytes >= sum(LoopProblem.gemm(m, k, n, b, hw.word_bytes).compulsory_bytes().values())
    assert fixed.layers[0]["mapper"] == "fixed" and mapped.layers[0]["mapper"] in ("tiling", "fold order")


@pytest.mark.parametrize("preset", ["tpu-v1", "tpu-v4", "edge-npu"])
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_whole_model_never_moves_more_than_the_fold_order(preset, phase):
    from workloads.models import load_model
    from workloads.transformer import build_model

    sizes = {"context": 512} if phase == "decode" else {"seq": 512}
    model = build_model(load_model("llama-2-7b"), phase, batch=1, **sizes)
    fixed, mapped = simulate(model, preset, mapper="fixed"), simulate(model, preset)
    assert mapped.core.dram_bytes <= fixed.core.dram_bytes
    f_rows = {(r["part"], r["name"]): r for r in fixed.layers}
    for row in mapped.layers:
        if row["unit"] == "matrix":
            assert row["dram_bytes"] <= f_rows[(row["part"], row["name"])]["dram_bytes"]
    placed = mapped.meta["gemm_mapper"]["placed"]
    assert mapped.meta["gemm_mapper"]["option"] == "tiling"
    assert sum(placed.values()) == sum(r["unit"] == "matrix" for r in mapped.layers)
    hw = load_hardware(preset)
    peak, bw = hw.array.rows * hw.array.cols * hw.cores, hw.dram.bytes_per_cycle(hw.clock_hz)
    for row in mapped.layers:  # conservation holds for what the mapper placed too
        if row.get("mapper") == "tiling":
            assert row["unit_cycles"] >= row["macs"] / peak
            assert row["total_cycles"] >= row["dram_bytes"] / bw * (1 - 1e-12)


def test_moe_experts_are_placed_too_and_never_move_more():
    from workloads.models import load_model
    from workloads.transformer import build_model

    model = build_model(load_model("mixtral-8x7b"), "prefill", batch=1, seq=256)
    fixed, mapped = simulate(model, "edge-npu", mapper="fixed"), simulate(model, "edge-npu")
    experts = [r for r in mapped.layers if r["name"] in ("moe.up", "moe.gate", "moe.down")]
    assert experts and all(r["mapper"] == "tiling" for r in experts)
    assert mapped.core.dram_bytes < fixed.core.dram_bytes
    assert mapped.core.macs == fixed.core.macs


@pytest.mark.parametrize("preset", ["tpu-v1", "edge-npu", "scalesim-scale"])
@pytest.mark.parametrize("dims", [(128, 128, 512, 32), (1, 128, 2048, 32), (2048, 128, 2048, 8)])
def test_batched_gemms_never_worse_than_the_fold_order(preset, dims):
    """A batch (attention heads) runs as independent GEMMs in SCALE-Sim; the nest loops over it outermost."""
    hw = load_hardware(preset)
    m, k, n, b = dims
    ref = simulate_gemm(GemmShape(m, k, n, b), hw)
    fold_dram = ref["dram_read_bytes"] + ref["dram_write_bytes"]
    problem = LoopProblem.gemm(m, k, n, b, dtype_bytes=hw.word_bytes)
    nest, _ = map_array_gemm(problem, hw, fold_dram, ref["busy_cycles"])
    if nest is not None:
        c = replay(nest, problem, hw)
        assert c.dram_bytes <= fold_dram
        bw = hw.dram_bytes_per_cycle
        assert max(c.busy_cycles, c.dram_bytes / bw) <= max(ref["busy_cycles"], fold_dram / bw)
        assert c.busy_cycles >= math.ceil(m * k * n * b / (hw.array.rows * hw.array.cols))


def test_edge_npu_prefill_is_placed_by_the_mapper_and_moves_less():
    """edge-npu's 64 KiB accumulators spill partial sums in the fold order; SRAM tiles avoid it."""
    hw = load_hardware("edge-npu")
    g = Graph("g", [gemm("g", 1024, 1024, 1024, dtype_bytes=1)])
    fixed, mapped = simulate(g, hw, mapper="fixed"), simulate(g, hw)
    assert mapped.layers[0]["mapper"] == "tiling"
    assert mapped.core.dram_bytes < 0.5 * fixed.core.dram_bytes


def test_mapper_keeps_the_fold_order_when_no_nest_is_better():
    """tpu-v1 decode GEMV: the fold order already moves the compulsory bytes at the fewest folds."""
    hw = load_hardware("tpu-v1")
    problem = LoopProblem.gemm(1, 4096, 4096, dtype_bytes=1)
    ref = simulate_gemm(GemmShape(1, 4096, 4096), hw)
    nest, info = map_array_gemm(problem, hw, ref["dram_read_bytes"] + ref["dram_write_bytes"], ref["busy_cycles"])
    assert nest is None and info["mapper"] == "fold order"


def test_bad_mapper_options_are_refused():
    g = Graph("g", [gemm("g", 64, 64, 64, dtype_bytes=1)])
    with pytest.raises(AccelsimError) as err:
        simulate(g, "tpu-v1", mapper="zigzag")
    assert err.value.field == "options.mapper"
    with pytest.raises(AccelsimError) as err:  # a spatial chip's mapper option is checked the same way
        simulate(g, "fusemax-cloud", mapper="zigzag")
    assert err.value.field == "options.mapper"


def test_cli_fold_order_option():
    import json

    from tests.cli_helper import cli_in_process, one_line_error

    args = ("simulate", "--model", "llama-2-7b", "--hardware", "edge-npu", "--phase", "prefill", "--seq", "128",
            "--blocks", "1", "--json")
    fixed = cli_in_process(*args, "--fold-order", "scalesim")
    assert fixed.returncode == 0, fixed
    assert json.loads(fixed.stdout)["gemm_mapper"]["option"] == "fixed"
    mapped = cli_in_process(*args)
    doc = json.loads(mapped.stdout)
    assert mapped.returncode == 0 and doc["gemm_mapper"]["option"] == "tiling"
    assert doc["gemm_mapper"]["placed"].get("tiling", 0) > 0
    assert doc["totals"]["dram_bytes"] < json.loads(fixed.stdout)["totals"]["dram_bytes"]
    one_line_error(cli_in_process(*args, "--fold-order", "zigzag"), "--fold-order")
    one_line_error(cli_in_process("simulate", "--model", "llama-2-7b", "--hardware", "a100-80gb",
                                  "--fold-order", "scalesim"), "--fold-order")
    one_line_error(cli_in_process("simulate", "--gemm", "64,64,64", "--fold-order", "tiling"), "--fold-order")


def test_a_missing_default_mapper_is_one_clear_error(monkeypatch):
    """An install older than the entry point: the error says how to fix it, never a silent fallback."""
    import importlib.metadata

    from accelsim.engines.accelerator import chip_base, chips

    monkeypatch.setattr(chip_base, "_LOADED", {})
    monkeypatch.setattr(chips, "_SHARE_CACHE", {})
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    g = Graph("g", [gemm("g", 96, 64, 80, dtype_bytes=1)])
    with pytest.raises(AccelsimError) as err:
        simulate(g, "tpu-v1")
    assert err.value.field == "options.mapper" and "pip install -e" in str(err.value.allowed)
    assert simulate(g, "tpu-v1", mapper="fixed").core.macs == 96 * 64 * 80


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("dims", [(2, 2, 3, 2), (3, 2, 2, 1), (2, 4, 1, 2)])
def test_batched_closed_form_equals_enumerating_every_nest(dataflow, dims):
    """With a batch rank too (it indexes every operand: the closed form loops over it outermost)."""
    b, m, k, n = dims
    spec = tiny(2, 2, dataflow, 8, 4, 8, bw=1.0)
    problem = LoopProblem.gemm(m, k, n, b, dtype_bytes=1)
    best_key, _ = _best_by_enumeration(problem, spec)
    nest, key = best_array_nest(problem, spec)
    assert key == pytest.approx(best_key, rel=1e-12)
    c = replay(nest, problem, spec)
    assert c.folds == folds_by_walking(nest, problem, spec)
