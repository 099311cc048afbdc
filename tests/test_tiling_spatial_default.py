"""The tiling mapper as the spatial kind's default: exact on small instances, the stream-once
model where the data fit, more than compulsory traffic exactly where no plan keeps them resident,
and the stream-once model still there when asked for."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.accelerator.spatial_nest import buffer_hierarchy, replay
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Graph, gemm
from accelsim.simulate import simulate
from accelsim.tiling import LevelLoops, LoopNest, LoopProblem, problem_for
from mappers.tiling.spatial import best_buffer_nest
from tests.tiling_bruteforce import enumerate_nests
from tests.tiling_replay import replay as replay_elementwise

SPATIAL = ("fusemax-cloud", "flat-cloud", "flat-edge")


def tiny(rows: int, cols: int, buffer_bytes: int, bw: float = 2.0, mac_cycles: int = 1) -> SpatialAccelerator:
    mac = {"cycles": mac_cycles, "actions": {"mac": 1}}
    return SpatialAccelerator.model_validate({
        "name": "tiny", "clock_hz": 1e9, "word_bytes": 1,
        "array_2d": {"rows": rows, "cols": cols, "ops": {"mac": mac}},
        "array_1d": {"rows": 1, "cols": cols, "ops": {"mac": mac}},
        "global_buffer": {"name": "gb", "capacity_bytes": buffer_bytes},
        "dram": {"name": "dram", "bandwidth_bytes_per_s": bw * 1e9},
        "energy": {"compute_pj": {"mac": 1.0}, "buffer_read_pj_per_byte": 1.0, "buffer_write_pj_per_byte": 1.0,
                   "dram_pj_per_byte": 10.0}})


def padded_shapes(problem: LoopProblem, rows: int, cols: int) -> list[dict[str, int]]:
    """The problem's extents and M / N rounded up to the array edge (the mapper's padded space)."""
    out = []
    for pm in (False, True):
        for pn in (False, True):
            e = dict(problem.extents)
            if pm and e.get("m", 1) > rows:
                e["m"] = math.ceil(e["m"] / rows) * rows
            if pn and e.get("n", 1) > cols:
                e["n"] = math.ceil(e["n"] / cols) * cols
            if e not in out:
                out.append(e)
    return out


def every_feasible_nest(problem: LoopProblem, spec: SpatialAccelerator, pad: bool):
    """Plain enumeration (``tiling_bruteforce``) of every nest, padded shapes too, costed by the engine."""
    hierarchy = buffer_hierarchy(spec)
    for ext in (padded_shapes(problem, spec.array_2d.rows, spec.array_2d.cols) if pad else [problem.extents]):
        p = problem if ext == problem.extents else problem.padded(ext)
        for nest in enumerate_nests(p, hierarchy):
            try:
                c = replay(nest, problem, spec)
            except AccelsimError:
                continue
            yield nest, c


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([1, 2, 3, 4, 6]), k=st.sampled_from([1, 2, 3, 4]), n=st.sampled_from([1, 2, 3, 4]),
       rows=st.integers(1, 3), cols=st.integers(1, 3), buffer=st.sampled_from([6, 12, 24, 40, 64, 200]),
       bw=st.sampled_from([0.25, 1.0, 8.0]), objective=st.sampled_from(["latency", "dram"]))
def test_closed_form_equals_enumerating_every_nest(m, k, n, rows, cols, buffer, bw, objective):
    """The mapper's optimum == the best of every nest of the hierarchy replayed by the engine; DRAM
    bytes >= compulsory always, and > compulsory exactly when no plan (objective dram) / no fastest
    plan (objective latency) keeps every operand resident; counts checked element by element."""
    spec = tiny(rows, cols, buffer, bw)
    problem = LoopProblem.gemm(m, k, n, dtype_bytes=1)
    compulsory = sum(problem.compulsory_bytes().values())
    order = (0, 1, 2) if objective == "latency" else (1, 0, 2)
    costed = [((max(c.cycles, c.dram_bytes / bw), c.dram_bytes, c.cycles), nest, c)
              for nest, c in every_feasible_nest(problem, spec, pad=True)]
    found = best_buffer_nest(problem, spec, objective=objective)
    assert (found is None) == (not costed)
    if found is None:
        return
    def rank(key):
        return tuple(key[j] for j in order)

    best = min(rank(key) for key, _, _ in costed)
    nest, key = found
    c = replay(nest, problem, spec)
    assert rank(key) == pytest.approx(best, rel=1e-12)
    assert (max(c.cycles, c.dram_bytes / bw), c.dram_bytes, c.cycles) == pytest.approx(key, rel=1e-12)
    assert c.dram_bytes >= compulsory
    resident = [x for x in costed if x[0][1] == compulsory]
    if objective == "dram":
        assert (c.dram_bytes > compulsory) == (not resident)
    else:
        fastest = min(x[0][0] for x in costed)
        assert (c.dram_bytes > compulsory) == (not [x for x in resident if x[0][0] == pytest.approx(fastest)])
    hierarchy = buffer_hierarchy(spec)
    reads, writes, _ = replay_elementwise(nest, problem_for(nest, problem), hierarchy)  # element by element
    assert reads["dram"] == c.cost.reads_bytes["dram"] and writes["dram"] == c.cost.writes_bytes["dram"]


@pytest.mark.parametrize("dims", [(2, 3, 2, 2), (3, 2, 4, 1), (2, 4, 1, 3)])
def test_batched_closed_form_equals_enumerating_every_nest(dims):
    """With a batch rank (it indexes every operand: the closed form loops over it outermost)."""
    b, m, k, n = dims
    spec = tiny(2, 2, 24, bw=1.0)
    problem = LoopProblem.gemm(m, k, n, b, dtype_bytes=1)
    best = min((max(c.cycles, c.dram_bytes), c.dram_bytes, c.cycles) for _, c in
               every_feasible_nest(problem, spec, pad=True))
    _, key = best_buffer_nest(problem, spec)
    assert key == pytest.approx(best, rel=1e-12)


def stream_once_with_whole_edges(m: int, k: int, n: int, spec: SpatialAccelerator, wb: int) -> bool:
    """Independent of the mapper: a plan that reads every operand once and uses the array's edges
    as the artifact counts them exists when the whole GEMM fits the buffer twice, or (a GEMV-like
    M within the rows) all of A and K plus an N tile that is a multiple of the columns dividing N do."""
    cols = spec.array_2d.cols
    if 2 * wb * (m * k + k * n + m * n) <= spec.buffer_bytes:
        return True
    tiles = [t for t in range(cols, n + 1, cols) if n % t == 0]
    return m <= spec.array_2d.rows and any(2 * wb * (m * k + k * t + m * t) <= spec.buffer_bytes for t in tiles)


@pytest.mark.parametrize("preset", SPATIAL)
@pytest.mark.parametrize("dims", [(64, 64, 64), (1, 4096, 4096), (1, 4096, 11008), (1, 4096, 32000),
                                  (200, 96, 300), (1, 128, 2048, 32), (512, 128, 512, 32)])
def test_where_the_data_fit_the_stream_once_model_is_kept_exactly(preset, dims):
    """Requirement: small GEMMs and decode GEMVs give the old model's cycles, bytes and energy."""
    from accelsim.engines.accelerator.chips import chip_for
    from accelsim.ir import GemmShape

    hw = load_hardware(preset)
    m, k, n, *batch = dims
    b = batch[0] if batch else 1
    shape = GemmShape(m, k, n, b)
    fixed, mapped = chip_for(hw, "fixed").gemm(shape, None, 2), chip_for(hw).gemm(shape, None, 2)
    assert fixed.mapper == "fixed" and mapped.mapper == "tiling"
    fixed_words, mapped_words = sum(fixed.dram_words.values()), sum(mapped.dram_words.values())
    assert fixed_words == b * (m * k + k * n + m * n)  # the old model: every operand once
    artifact_cycles = b * math.ceil(m / hw.array_2d.rows) * math.ceil(n / hw.array_2d.cols) * k
    assert fixed.cycles == artifact_cycles
    assert mapped.cycles >= artifact_cycles  # ceil is subadditive: never fewer
    assert mapped_words >= fixed_words
    if stream_once_with_whole_edges(m, k, n, hw, 2):
        assert mapped.dram_words == fixed.dram_words
        assert mapped.cycles == fixed.cycles and mapped.energy_pj == fixed.energy_pj
    if b == 1:  # and through the whole engine
        g = Graph("g", [gemm("g", m, k, n, dtype_bytes=2)])
        f, t = simulate(g, hw, mapper="fixed"), simulate(g, hw)
        assert f.layers[0]["mapper"] == "fixed" and t.layers[0]["mapper"] == "tiling"
        if stream_once_with_whole_edges(m, k, n, hw, 2):
            assert (t.core.dram_bytes, t.core.total_cycles, t.core.energy_pj) == \
                (f.core.dram_bytes, f.core.total_cycles, f.core.energy_pj)


def resident_plan_exists(m: int, k: int, n: int, buffer_bytes: int, wb: int) -> bool:
    """Closed form, independent of the mapper: every operand is read once only if at most one DRAM
    loop breaks each one's reuse, i.e. two of M, K, N sit whole in the buffer tile (the third can
    be 1): so a resident plan exists iff one of those tiles fits twice."""
    return any(2 * wb * (tm * tk + tk * tn + tm * tn) <= buffer_bytes
               for tm, tk, tn in ((m, k, 1), (m, 1, n), (1, k, n)))


@settings(max_examples=30, deadline=None)
@given(preset=st.sampled_from(SPATIAL), m=st.sampled_from([1, 7, 64, 512, 2048, 4096]),
       k=st.sampled_from([128, 1000, 4096, 11008]), n=st.sampled_from([64, 4096, 11008, 14336, 32000]))
def test_dram_above_compulsory_exactly_when_no_plan_keeps_the_data(preset, m, k, n):
    hw = load_hardware(preset)
    problem = LoopProblem.gemm(m, k, n, dtype_bytes=2)
    compulsory = sum(problem.compulsory_bytes().values())
    _, (_, dram, _) = best_buffer_nest(problem, hw, objective="dram")
    assert dram >= compulsory
    assert (dram > compulsory) == (not resident_plan_exists(m, k, n, hw.buffer_bytes, 2))
    _, (_, dram_latency, _) = best_buffer_nest(problem, hw)
    assert dram_latency >= compulsory  # the default (latency) objective too


def test_long_prefill_ffn_moves_more_than_the_stream_once_model():
    """A 4096-token FFN input is 32 MiB: on a 16 MiB buffer nothing keeps every operand resident."""
    hw = load_hardware("fusemax-cloud")
    m, k, n = 4096, 4096, 11008
    assert not resident_plan_exists(m, k, n, hw.buffer_bytes, 2)
    g = Graph("g", [gemm("g", m, k, n, dtype_bytes=2)])
    fixed, mapped = simulate(g, hw, mapper="fixed"), simulate(g, hw)
    assert mapped.core.dram_bytes > fixed.core.dram_bytes == 2 * (m * k + k * n + m * n)
    assert mapped.layers[0]["unit_cycles"] == fixed.layers[0]["unit_cycles"]  # the array's edges used whole
    assert mapped.core.energy_pj > fixed.core.energy_pj


@pytest.mark.parametrize("preset", SPATIAL)
@pytest.mark.parametrize("phase, length", [("prefill", 4096), ("decode", 2048)])
def test_whole_model_rows_say_who_placed_them_and_conserve(preset, phase, length):
    from workloads.models import load_model
    from workloads.transformer import build_model

    sizes = {"seq": length} if phase == "prefill" else {"context": length}
    model = build_model(load_model("llama-2-7b"), phase, batch=1, **sizes)
    fixed, mapped = simulate(model, preset, mapper="fixed"), simulate(model, preset)
    hw = load_hardware(preset)
    assert mapped.core.dram_bytes >= fixed.core.dram_bytes
    assert mapped.core.macs == fixed.core.macs
    assert mapped.meta["gemm_mapper"]["option"] == "tiling" and fixed.meta["gemm_mapper"]["option"] == "fixed"
    matrix = [r for r in mapped.layers if r["unit"] == "matrix"]
    assert matrix and all(r["mapper"] == "tiling" for r in matrix)
    assert all(r["mapper"] == "fixed" for r in fixed.layers if r["unit"] == "matrix")
    assert mapped.meta["gemm_mapper"]["placed"] == {"tiling": len(matrix)}
    bw = hw.dram.bytes_per_cycle(hw.clock_hz)
    f_rows = {(r["part"], r["name"]): r for r in fixed.layers}
    for row in matrix:
        assert row["unit_cycles"] >= f_rows[(row["part"], row["name"])]["unit_cycles"]
        assert row["dram_bytes"] >= f_rows[(row["part"], row["name"])]["dram_bytes"] * (1 - 1e-12)
        assert row["unit_cycles"] >= row["macs"] / hw.array_2d.pes
        assert row["total_cycles"] >= row["dram_bytes"] / bw * (1 - 1e-12)
    if phase == "prefill":  # 4096 tokens: activations of 32 MiB and more exceed every buffer
        assert mapped.core.dram_bytes > fixed.core.dram_bytes


def test_the_engine_checks_the_plan():
    hw = tiny(2, 2, 64)
    problem = LoopProblem.gemm(4, 4, 4, dtype_bytes=1)
    whole = LoopNest("gemm", dict(problem.extents), (LevelLoops("dram", ()), LevelLoops(
        "buffer", (("k", 4),), {"rows": {"m": 4}, "cols": {"n": 4}}), LevelLoops("pe", ())))
    with pytest.raises(AccelsimError) as err:  # 2 x 48 bytes on a 64-byte buffer
        replay(whole, problem, hw)
    assert "buffer" in str(err.value) and "64" in str(err.value)
    k_on_rows = LoopNest("gemm", dict(problem.extents), (LevelLoops("dram", (("m", 4), ("n", 4))), LevelLoops(
        "buffer", (), {"rows": {"k": 4}}), LevelLoops("pe", ())))
    with pytest.raises(AccelsimError) as err:  # output stationary: rows unroll M only
        replay(k_on_rows, problem, hw)
    assert "cannot unroll rank k" in str(err.value)


def test_bad_mapper_option_and_a_missing_entry_point(monkeypatch):
    import importlib.metadata

    from accelsim.engines.accelerator import chip_base, spatial_chip

    g = Graph("g", [gemm("g", 96, 64, 80, dtype_bytes=2)])
    with pytest.raises(AccelsimError) as err:
        simulate(g, "fusemax-cloud", mapper="zigzag")
    assert err.value.field == "options.mapper"
    monkeypatch.setattr(chip_base, "_LOADED", {})
    monkeypatch.setattr(spatial_chip, "_GEMM_CACHE", {})
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    with pytest.raises(AccelsimError) as err:  # never a silent fallback to the stream-once model
        simulate(g, "fusemax-cloud")
    assert err.value.field == "options.mapper" and "pip install -e" in str(err.value.allowed)
    assert simulate(g, "fusemax-cloud", mapper="fixed").core.macs == 96 * 64 * 80


def test_cli_gemm_mapper_option():
    import json

    from tests.cli_helper import cli_in_process, one_line_error

    args = ("simulate", "--model", "llama-2-7b", "--hardware", "fusemax-cloud", "--phase", "prefill", "--seq",
            "4096", "--blocks", "1", "--json")
    mapped = json.loads(cli_in_process(*args).stdout)
    fixed = json.loads(cli_in_process(*args, "--gemm-mapper", "fixed").stdout)
    alias = json.loads(cli_in_process(*args, "--fold-order", "scalesim").stdout)
    assert mapped["gemm_mapper"]["option"] == "tiling" and mapped["gemm_mapper"]["placed"].get("tiling", 0) > 0
    assert fixed["gemm_mapper"]["option"] == "fixed" and alias["totals"] == fixed["totals"]
    assert mapped["totals"]["dram_bytes"] > fixed["totals"]["dram_bytes"]
    one_line_error(cli_in_process(*args, "--gemm-mapper", "zigzag"), "--gemm-mapper")
    one_line_error(cli_in_process(*args, "--gemm-mapper", "tiling", "--fold-order", "scalesim"), "--gemm-mapper")
    one_line_error(cli_in_process("simulate", "--model", "llama-2-7b", "--hardware", "a100-80gb",
                                  "--gemm-mapper", "fixed"), "--gemm-mapper")
    one_line_error(cli_in_process("simulate", "--gemm", "64,64,64", "--gemm-mapper", "tiling"), "--gemm-mapper")


def test_tiles_get_the_free_half_when_an_operand_lives_on_chip():
    """lowering.Placement keeps an on-chip activation in half the buffer; the tiles get the rest."""
    from accelsim.engines.accelerator.spatial_chip import SpatialChip

    hw = load_hardware("fusemax-cloud")
    chip = SpatialChip(hw)
    assert chip._for_tiles((1.0, 1.0, 1.0)).buffer_bytes == hw.buffer_bytes
    assert chip._for_tiles((0.0, 1.0, 1.0)).buffer_bytes == hw.buffer_bytes // 2
    # 1536^3: one operand (4.5 MiB) with a row of the others fits 16 MiB twice, not 8 MiB twice
    from accelsim.ir import GemmShape

    d = 1536
    assert resident_plan_exists(d, d, d, hw.buffer_bytes, 2)
    assert not resident_plan_exists(d, d, d, hw.buffer_bytes // 2, 2)
    shape = GemmShape(d, d, d)
    full = chip.gemm(shape, None, 2, (1.0, 1.0, 1.0))
    assert sum(full.dram_words.values()) == 3 * d * d  # resident on the whole buffer
    # the output on chip: its final write is free, but A, B or C's partial sums must now move again
    kept = chip.gemm(shape, None, 2, (1.0, 1.0, 0.0))
    assert kept.dram_words["ifmap"] + kept.dram_words["filter"] + kept.dram_words["ofmap_read"] > 2 * d * d
