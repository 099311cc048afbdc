"""Distributed GEMM/GEMV on the mesh: numpy correctness through the simulated moves, symmetry of
the representative row/column, and the hop structure that separates MeshGEMM from Cannon."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.mesh.collectives import collective_streams
from accelsim.engines.mesh.functional import run_vector_streams
from accelsim.engines.mesh.gemm import (
    GEMM_ALGORITHMS,
    execute,
    full_mesh_step_cycles,
    gemm_timing,
    move_streams,
    step_moves,
    steps,
)
from accelsim.engines.mesh.gemv import gemv_timing
from accelsim.engines.mesh.netsim import simulate_streams
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware

SMALL = load_hardware("mesh-small")


@settings(max_examples=30, deadline=None)
@given(algorithm=st.sampled_from(GEMM_ALGORITHMS), grid=st.integers(1, 6), extra=st.tuples(*[st.integers(0, 9)] * 3),
       seed=st.integers(0, 2**16))
def test_every_gemm_schedule_computes_a_times_b(algorithm, grid, extra, seed):
    m, k, n = (grid + e for e in extra)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(execute(algorithm, a, b, grid), a @ b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", GEMM_ALGORITHMS)
@pytest.mark.parametrize("grid", [3, 4, 5, 7])
def test_representative_row_and_column_equal_the_full_mesh(algorithm, grid):
    wav = {"A": 7, "B": 3}
    for s in range(steps(algorithm, grid)):
        one = simulate_streams(move_streams(step_moves(algorithm, grid, s, [0], [0]), wav), 1.0, 5.0).makespan_cycles
        assert one == full_mesh_step_cycles(algorithm, grid, s, wav, 1.0, 5.0)


def test_meshgemm_step_is_constant_in_n_and_cannon_step_linear():
    wav = {"A": 16, "B": 16}
    mesh = {n: simulate_streams(move_streams(step_moves("meshgemm", n, 0, [0], [0]), wav), 1.0, 5.0).makespan_cycles
            for n in (4, 8, 16, 64, 256)}
    cannon = {n: simulate_streams(move_streams(step_moves("cannon", n, 0, [0], [0]), wav), 1.0, 5.0).makespan_cycles
              for n in (4, 8, 16, 64, 256)}
    assert len(set(mesh.values())) == 1 and mesh[4] == 5 + 2 * 1 + 16  # beta + two hops + B
    for n, t in cannon.items():
        assert t == 5 + (n - 1) * 1 + 16  # the wrap-around tile crosses n - 1 hops


def test_meshgemm_beats_cannon_and_summa_more_on_larger_grids():
    wse2 = load_hardware("wse2")
    ratio = {}
    for grid in (120, 360):
        t = {a: gemm_timing(a, 4096, 4096, 4096, grid, wse2).total_cycles for a in ("meshgemm", "cannon", "summa")}
        ratio[grid] = min(t["cannon"], t["summa"]) / t["meshgemm"]
    assert ratio[360] > ratio[120] > 1.0


def test_gemm_timing_adds_compute_and_communication_per_step():
    # without ramps and overlap: shift, then multiply; a step is beta + the 3-hop wrap-around + 32 wavelets
    t = gemm_timing("cannon", 32, 32, 32, 4, SMALL, overlap=False, ramps=False)
    mt = 8
    assert t.compute_cycles == 4 * mt ** 3 / SMALL.macs_per_cycle
    step = 5 + 3 * 1 + SMALL.wavelets(mt * mt)  # beta, wrap-around of 3 hops, 64 halfs = 32 wavelets
    align = 2 * step  # P/2 = 2 shifts of A alone skew the left matrix first (meshgemm.csl)
    assert t.total_cycles == align + t.compute_cycles + 3 * step


def test_gemm_errors_name_the_field():
    with pytest.raises(AccelsimError, match="grid"):
        gemm_timing("meshgemm", 256, 256, 256, 129, SMALL)
    with pytest.raises(AccelsimError, match="padded"):
        gemm_timing("meshgemm", 3, 64, 64, 8, SMALL)
    with pytest.raises(AccelsimError, match="SRAM"):
        gemm_timing("allgather", 8192, 8192, 8192, 16, SMALL)
    with pytest.raises(AccelsimError, match="algorithm"):
        gemm_timing("strassen", 64, 64, 64, 4, SMALL)


@settings(max_examples=15, deadline=None)
@given(grid=st.integers(2, 8), extra=st.tuples(st.integers(0, 9), st.integers(0, 9)), seed=st.integers(0, 2**16),
       algorithm=st.sampled_from(["ktree", "chain", "ring", "two_phase"]))
def test_meshgemv_local_gemv_plus_allreduce_gives_w_times_x(grid, extra, seed, algorithm):
    k, n = grid + extra[0], grid + extra[1]
    kt, nt = -(-k // grid), -(-n // grid)
    rng = np.random.default_rng(seed)
    w, x = np.zeros((kt * grid, nt * grid)), np.zeros(kt * grid)
    w[:k, :n], x[:k] = rng.standard_normal((k, n)), rng.standard_normal(k)
    for col in range(grid):  # column col holds output slice col; core (col, row) the row-th K slice
        partial = {(col, row): x[row * kt:(row + 1) * kt] @ w[row * kt:(row + 1) * kt, col * nt:(col + 1) * nt]
                   for row in range(grid)}
        streams = collective_streams("allreduce", algorithm, grid, nt, row=col, axis="y")
        final = run_vector_streams(streams, partial)
        for row in range(grid):
            np.testing.assert_allclose(final[(col, row)], (x @ w)[col * nt:(col + 1) * nt], atol=1e-10)


def test_meshgemv_is_faster_than_the_pipelined_allreduce_baseline():
    wse2 = load_hardware("wse2")
    # WaferLLM §7: communication is up to 90% of the vendor GEMV's time; the K-tree cuts it
    for grid in (360, 600):
        fast = gemv_timing("meshgemv", 16384, 16384, grid, wse2)
        base = gemv_timing("pipelined", 16384, 16384, grid, wse2)
        assert fast.compute_cycles == base.compute_cycles
        assert base.comm_cycles > 4 * fast.comm_cycles
