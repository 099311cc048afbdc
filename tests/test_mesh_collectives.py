"""Mesh network simulator and collectives: structural invariants, published closed forms, numpy sums."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.mesh import closed_forms as cf
from accelsim.engines.mesh.collectives import ALLREDUCE_ALGORITHMS, REDUCE_ALGORITHMS, collective_streams
from accelsim.engines.mesh.functional import run_vector_streams
from accelsim.engines.mesh.gemv import allreduce_timing
from accelsim.engines.mesh.netsim import Stream, line_path, simulate_streams
from accelsim.engines.mesh.rings import interleaved_ring, ring_hops, sequential_ring
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware

ALPHA, BETA = 1.0, 5.0  # HPDC'24 model: 1 cycle per hop, T_R = 2 -> 2 T_R + 1 = 5


def makespan(kind, algorithm, p, b, **kw):
    return simulate_streams(collective_streams(kind, algorithm, p, b, **kw), ALPHA, BETA).makespan_cycles


def test_interleaved_ring_is_a_permutation_with_neighbours_within_two_hops():
    for n in range(3, 2001):
        order = interleaved_ring(n)
        assert sorted(order) == list(range(n))
        assert max(ring_hops(order)) <= 2


def test_cannon_wrap_around_needs_n_minus_1_hops():
    for n in range(3, 300):
        hops = ring_hops(sequential_ring(n))
        assert max(hops) == n - 1 and hops.count(n - 1) == 1 and hops.count(1) == n - 1


def test_two_streams_on_one_link_serialise():
    path = line_path(0, 3)
    res = simulate_streams([Stream(path, 10, 0), Stream(path, 10, 0)], ALPHA, BETA)
    # one stream: beta + 3 hops + 10 wavelets; the second waits 10 cycles for the first link
    assert res.tail[0] == BETA + 3 * ALPHA + 10
    assert res.tail[1] == res.tail[0] + 10
    assert res.max_link_wavelets == 20 and res.wavelet_hops == 60


@pytest.mark.parametrize("p,b", [(2, 1), (7, 13), (16, 64), (100, 1000), (333, 5)])
def test_chain_and_broadcast_equal_the_closed_forms(p, b):
    assert makespan("reduce", "chain", p, b) == cf.chain_reduce(p, b, ALPHA, BETA)
    assert makespan("broadcast", "chain", p, b) == cf.broadcast_1d(p, b, ALPHA, BETA)


@pytest.mark.parametrize("p,b", [(2, 3), (9, 40), (64, 256)])
def test_store_and_forward_chain_pays_the_whole_vector_at_every_stage(p, b):
    # message relay: P - 1 stages of (beta + one hop + B), nothing overlaps
    assert makespan("reduce", "chain_stored", p, b) == (p - 1) * (BETA + ALPHA + b)


@pytest.mark.parametrize("p,b", [(4, 8), (16, 64), (64, 256), (100, 1000)])
def test_star_reduce_matches_its_closed_form_up_to_the_first_hop(p, b):
    # the model writes max(C, E/N + L): the last hop into the root overlaps the contention C,
    # except for the first wavelet's single hop
    assert cf.star_reduce(p, b, BETA) <= makespan("reduce", "star", p, b) <= cf.star_reduce(p, b, BETA) + ALPHA


@pytest.mark.parametrize("p,b", [(4, 8), (15, 60), (16, 64), (64, 256)])
def test_ring_allreduce_matches_its_closed_form(p, b):
    # chunks of B / P wavelets (B a multiple of P); the closed form's 4P - 6 hops are the
    # interleaved ring's per-chunk distance, within one hop
    assert abs(makespan("allreduce", "ring", p, b) - cf.ring_allreduce(p, b, ALPHA, BETA)) <= ALPHA


@pytest.mark.parametrize("p,b", [(16, 64), (64, 256), (100, 1000), (256, 256)])
def test_two_phase_reduce_within_6_percent_of_its_closed_form(p, b):
    # the closed form adds distance and depth to the 2B contention; the simulator overlaps part
    # of them, so it lands a little below the form, never above
    sim = makespan("reduce", "two_phase", p, b)
    closed = cf.two_phase_reduce(p, b, ALPHA, BETA)
    assert 0.94 * closed <= sim <= closed


def test_ktree_needs_fewer_relay_stages_than_ring_from_16_cores():
    for p in [16, 17, 23, 40, 64, 256, 420]:
        ring = simulate_streams(collective_streams("allreduce", "ring", p, p), ALPHA, BETA) if p <= 96 else None
        ring_depth = ring.depth if ring else 2 * (p - 1)
        ktree = simulate_streams(collective_streams("allreduce", "ktree", p, p), ALPHA, BETA)
        assert ktree.depth < ring_depth
        if ring:
            assert ring.depth == 2 * (p - 1)


@settings(max_examples=25, deadline=None)
@given(p=st.integers(2, 24), b=st.integers(1, 40), algorithm=st.sampled_from(ALLREDUCE_ALGORITHMS),
       k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_every_allreduce_leaves_the_sum_on_every_core(p, b, algorithm, k, seed):
    rng = np.random.default_rng(seed)
    init = {(i, 0): rng.standard_normal(b) for i in range(p)}
    final = run_vector_streams(collective_streams("allreduce", algorithm, p, b, k=k), init)
    total = sum(init.values())
    for core in init:
        np.testing.assert_allclose(final[core], total, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(p=st.integers(2, 30), b=st.integers(1, 20), algorithm=st.sampled_from(REDUCE_ALGORITHMS),
       root=st.integers(0, 29), seed=st.integers(0, 2**16))
def test_every_reduce_leaves_the_sum_on_the_root(p, b, algorithm, root, seed):
    root %= p
    rng = np.random.default_rng(seed)
    init = {(i, 0): rng.standard_normal(b) for i in range(p)}
    final = run_vector_streams(collective_streams("reduce", algorithm, p, b, root=root), init)
    np.testing.assert_allclose(final[(root, 0)], sum(init.values()), rtol=1e-12, atol=1e-12)


def test_a_schedule_with_a_missing_dependency_computes_the_wrong_sum():
    streams = collective_streams("reduce", "chain", 4, 3)
    broken = [Stream(s.path, s.wavelets, s.colour, (), s.relay, s.ready_cycles, s.multicast, s.tag) for s in streams]
    init = {(i, 0): np.ones(3) for i in range(4)}
    assert not np.allclose(run_vector_streams(broken, init)[(0, 0)], 4.0)


def test_star_needs_a_colour_per_sender_and_breaks_the_wse2_limit():
    res = simulate_streams(collective_streams("reduce", "star", 30, 4), ALPHA, BETA)
    assert res.colours_per_router == 29 and not res.conflicts
    with pytest.raises(AccelsimError, match="colours"):
        allreduce_timing("star", 30, 8, load_hardware("wse2"))


@pytest.mark.parametrize("p", [20, 48])
def test_lockstep_ring_is_close_to_the_full_ring_simulation(p):
    device = load_hardware("mesh-small")
    full = simulate_streams(collective_streams("allreduce", "ring", p, 4 * p, device.elements_per_wavelet),
                            device.alpha_cycles, device.beta_cycles).makespan_cycles
    one = [s for s in collective_streams("allreduce", "ring", p, 4 * p, device.elements_per_wavelet) if not s.deps]
    step = simulate_streams(one, device.alpha_cycles, device.beta_cycles).makespan_cycles
    assert full <= step * 2 * (p - 1) <= 1.05 * full


@pytest.mark.parametrize("algorithm", ["ktree", "chain", "two_phase", "ring"])
def test_one_column_allreduce_equals_all_columns_at_once(algorithm):
    # MeshGEMV allreduces every column at the same time; columns share no links
    p = 9
    one = simulate_streams(collective_streams("allreduce", algorithm, p, 18, row=0, axis="y"), ALPHA, BETA)
    every = [s for col in range(p) for s in collective_streams("allreduce", algorithm, p, 18, row=col, axis="y")]
    offsets, merged = 0, []
    for col in range(p):  # renumber each column's dependencies into the merged list
        streams = collective_streams("allreduce", algorithm, p, 18, row=col, axis="y")
        merged += [Stream(s.path, s.wavelets, (col, s.colour), tuple(d + offsets for d in s.deps), s.relay,
                          s.ready_cycles, s.multicast, s.tag) for s in streams]
        offsets += len(streams)
    assert len(merged) == len(every)
    assert simulate_streams(merged, ALPHA, BETA).makespan_cycles == one.makespan_cycles
