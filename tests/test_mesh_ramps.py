"""Core-to-router ramps as a shared resource, the overlapped MeshGEMM step, and WaferLLM's
transposed score GEMM: closed forms, the published HPDC'24 model, full-mesh equality, numpy."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.mesh.collectives import collective_streams
from accelsim.engines.mesh.gemm import (
    GEMM_ALGORITHMS,
    full_mesh_step_cycles,
    gemm_timing,
    step_cycles,
    steps,
)
from accelsim.engines.mesh.gemm_transposed import (
    execute_transposed,
    row_reduce_cycles,
    transposed_gemm_timing,
)
from accelsim.engines.mesh.netsim import Stream, line_path, simulate_streams
from accelsim.hardware import load_hardware

ALPHA, BETA = 1.0, 5.0
SMALL = load_hardware("mesh-small")


def test_two_flows_into_one_core_serialise_on_its_ramp():
    left, right = Stream(line_path(0, 1), 10, 0), Stream(line_path(2, 1), 10, 1)
    free = simulate_streams([left, right], ALPHA, BETA)  # no ramp model: distinct links, no wait
    assert free.tail == [BETA + ALPHA + 10] * 2
    one_lane = simulate_streams([left, right], ALPHA, BETA, 1.0, 1.0)
    assert one_lane.tail == [BETA + ALPHA + 10, BETA + ALPHA + 10 + 10]  # the second waits for the ramp
    two_lanes = simulate_streams([left, right], ALPHA, BETA, 1.0, 2.0)
    assert two_lanes.tail == free.tail


def test_two_tiles_leaving_one_core_serialise_on_its_off_ramp():
    east, south = Stream(((0, 0), (1, 0)), 8, 0), Stream(((0, 0), (0, 1)), 5, 1)
    res = simulate_streams([east, south], ALPHA, BETA, 1.0, 1.0)
    assert res.tail == [BETA + ALPHA + 8, BETA + 8 + ALPHA + 5]


@pytest.mark.parametrize("p,b", [(4, 8), (15, 60), (16, 64), (64, 256)])
def test_star_with_a_middle_root_is_the_hpdc24_model_only_with_ramps(p, b):
    # T = max(C, E/N) + L + (2 T_R + 1) D with C = B (P - 1) wavelets through the root PE,
    # L the farthest sender's hops, D = 1 (Luczynski et al., HPDC'24)
    root = p // 2
    streams = collective_streams("reduce", "star", p, b, root=root)
    model = b * (p - 1) + max(root, p - 1 - root) * ALPHA + BETA
    assert simulate_streams(streams, ALPHA, BETA, 1.0, 1.0).makespan_cycles == model
    assert simulate_streams(streams, ALPHA, BETA).makespan_cycles < model  # links alone: two sides in parallel


@pytest.mark.parametrize("algorithm", GEMM_ALGORITHMS)
@pytest.mark.parametrize("grid", [3, 4, 5, 7])
def test_representative_with_ramps_equals_the_full_mesh(algorithm, grid):
    for wav in ({"A": 7, "B": 3}, {"A": 3, "B": 8}):
        for ramp in (0.5, 1.0, 2.0):
            for s in range(steps(algorithm, grid)):
                assert step_cycles(algorithm, grid, s, wav, ALPHA, BETA, 1.0, ramp) == \
                    full_mesh_step_cycles(algorithm, grid, s, wav, ALPHA, BETA, 1.0, ramp)


@pytest.mark.parametrize("algorithm", GEMM_ALGORITHMS)
def test_a_very_wide_ramp_gives_the_ramp_free_model(algorithm):
    for grid in (3, 6):
        for s in range(steps(algorithm, grid)):
            wav = {"A": 9, "B": 4}
            assert step_cycles(algorithm, grid, s, wav, ALPHA, BETA, 1.0, 1e9) == \
                step_cycles(algorithm, grid, s, wav, ALPHA, BETA, 1.0, None)
    wide = SMALL.model_copy(update={"ramp_wavelets_per_cycle": 1e9})
    for args in ((64, 64, 64, 4), (96, 40, 72, 8)):
        assert gemm_timing(algorithm, *args, wide) == gemm_timing(algorithm, *args, SMALL, ramps=False)


def test_cannon_and_meshgemm_steps_on_a_4x4_mesh_by_hand():
    # 8 x 8 tiles = 32 wavelets each. A tiles take every off-ramp first (beta + 32), then the B tiles
    # leave; the slowest B tile crosses Cannon's 3-hop wrap-around (MeshGEMM: 2 hops) and reaches a
    # free on-ramp, so a step is beta + A + hops + B.
    cannon = gemm_timing("cannon", 32, 32, 32, 4, SMALL)
    step, align = 5 + 32 + 3 + 32, 5 + 3 + 32  # an alignment step moves A only
    assert cannon.total_cycles == 2 * align + 3 * (512 + step) + 512  # bulk-synchronous baseline
    mesh = gemm_timing("meshgemm", 32, 32, 32, 4, SMALL)
    step, align = 5 + 32 + 2 + 32, 5 + 2 + 32
    assert mesh.total_cycles == 2 * align + 4 * max(512, step)  # meshgemm.csl: P overlapped steps
    assert gemm_timing("meshgemm", 32, 32, 32, 4, SMALL, overlap=False).total_cycles == \
        2 * align + 3 * (512 + step) + 512


def test_two_sided_chain_reduce_closed_form_matches_the_simulator_for_every_root():
    for alpha, beta in ((1.0, 5.0), (2.0, 3.0)):
        for ramp in (None, 1.0, 2.0):
            for p in (2, 3, 6, 11):
                for b in (1, 4, 30):
                    for root in range(p):
                        sim = simulate_streams(collective_streams("reduce", "chain", p, b, root=root),
                                               alpha, beta, 1.0, ramp).makespan_cycles
                        assert sim == row_reduce_cycles(p, root, b, alpha, beta, 1.0, ramp)


@settings(max_examples=25, deadline=None)
@given(grid=st.integers(1, 6), extra=st.tuples(*[st.integers(0, 7)] * 3), seed=st.integers(0, 2**16))
def test_transposed_schedule_computes_a_times_b_transposed(grid, extra, seed):
    m, k, n = (grid + e for e in extra)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k))
    np.testing.assert_allclose(execute_transposed(a, b, grid), a @ b.T, rtol=1e-10, atol=1e-10)


def test_transposed_gemm_bounds_and_row_coupling():
    wse2 = load_hardware("wse2")
    for grid in (8, 60):
        t = transposed_gemm_timing(512, 512, 512, grid, wse2)
        mt, kt, nt = t.tile_mkn
        local = mt * kt * nt
        roots = [row_reduce_cycles(grid, r, wse2.wavelets(mt * nt), 1.0, 5.0, 1.0, 1.0) for r in range(grid)]
        shift = (t.comm_cycles - sum(roots)) / grid
        # never faster than one row visiting every root in turn, never slower than every row waiting
        # for the worst root (or a shift) at every step
        assert grid * local + sum(roots) <= t.total_cycles <= grid * max(local + max(roots), shift)
        assert t.total_cycles < grid * (local + max(roots))  # the coupling lets near roots catch up
        assert t.compute_cycles == grid * local


def test_allreduce_with_ramps_is_never_faster():
    from accelsim.engines.mesh.gemv import allreduce_timing

    wse2 = load_hardware("wse2")
    for p, b in ((16, 8), (100, 30)):
        with_ramps = allreduce_timing("ktree", p, b, wse2)
        without = allreduce_timing("ktree", p, b, wse2, ramps=False)
        assert with_ramps.cycles >= without.cycles
