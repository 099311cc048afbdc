"""MeshGEMV and allreduce timing on a core grid.

Why: decode is a chain of GEMVs. WaferLLM's MeshGEMV (He et al., OSDI'25, §5) keeps a
``Kt x Nt`` tile of W on every core of a P x P grid, with x (length K) cut along y and
replicated along x; each core does its local GEMV, then a K-tree allreduce along y sums the
P partial ``Nt``-long vectors of each column. The vendor baseline does a pipelined (chain)
allreduce instead, a ring allreduce is the GPU habit; both need O(P) relay stages.

Allreduces are simulated on one column (every column runs the same schedule on its own links).
A ring on more than ``RING_FULL_LIMIT`` cores is timed step by step in lockstep (2 (P - 1) times
one simulated step) because the full schedule has 2 P (P - 1) streams; on smaller rings the two
agree within a few per cent (``tests/test_mesh_collectives.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from accelsim.engines.mesh.collectives import ALLREDUCE_ALGORITHMS, collective_streams
from accelsim.engines.mesh.netsim import simulate_streams
from accelsim.errors import AccelsimError

RING_FULL_LIMIT = 96
GEMV_ALGORITHMS = ("meshgemv", "pipelined", "store_forward", "ring", "two_phase", "star")
_ALLREDUCE_OF = {"meshgemv": "ktree", "pipelined": "chain", "store_forward": "chain_stored", "ring": "ring",
                 "two_phase": "two_phase",
                 "star": "star"}


@dataclass(frozen=True)
class CollectiveTiming:
    cycles: float
    depth: int  # relay stages on the longest dependency chain
    colours_per_router: int
    routing_cycles: float  # beta times depth: the relay-stage share of the critical path


def allreduce_timing(algorithm: str, p: int, elements: int, device, k: int = 2,
                     groups: int | None = None, ramps: bool = True) -> CollectiveTiming:
    """Allreduce of an ``elements``-long vector over ``p`` cores on one line of ``device``; with
    ``ramps`` a core's incoming (outgoing) streams share its ramp (a group root fed from both sides
    takes the two streams one after the other)."""
    if algorithm not in ALLREDUCE_ALGORITHMS:
        raise AccelsimError(f"unknown allreduce {algorithm!r}", field="algorithm", allowed=ALLREDUCE_ALGORITHMS)
    if p == 1:
        return CollectiveTiming(0.0, 0, 0, 0.0)
    cycles, depth, colours, conflict = _simulated(algorithm, p, elements, device.elements_per_wavelet,
                                                  device.alpha_cycles, device.beta_cycles,
                                                  device.link_wavelets_per_cycle, k, groups,
                                                  device.ramp_wavelets_per_cycle if ramps else None)
    if conflict:
        raise AccelsimError(f"{algorithm} allreduce routing conflicts: {conflict}", field="routing")
    if colours > device.routing_colours:
        raise AccelsimError(f"{algorithm} allreduce over {p} cores needs {colours} colours at one "
                            f"router, {device.name} routes {device.routing_colours}", field="routing",
                            allowed=f"<= {device.routing_colours} colours (another algorithm or a smaller grid)")
    return CollectiveTiming(cycles, depth, colours, device.beta_cycles * depth)


@lru_cache(maxsize=4096)
def _simulated(algorithm: str, p: int, elements: int, per: int, alpha: float, beta: float, rate: float, k: int,
               groups: int | None, ramp: float | None = None) -> tuple[float, int, int, str]:
    """(cycles, depth, colours, first conflict) of one allreduce; cached because an LLM search asks
    for the same few shapes on every candidate grid."""
    if algorithm == "ring" and p > RING_FULL_LIMIT:
        one = [s for s in collective_streams("allreduce", "ring", p, elements, per) if not s.deps]  # step 1
        res = simulate_streams(one, alpha, beta, rate, ramp)
        depth = 2 * (p - 1)
        return res.makespan_cycles * depth, depth, res.colours_per_router, ""
    streams = collective_streams("allreduce", algorithm, p, elements, per, k=k, groups=groups)
    res = simulate_streams(streams, alpha, beta, rate, ramp)
    return res.makespan_cycles, res.depth, res.colours_per_router, (res.conflicts or [""])[0]


@dataclass(frozen=True)
class GemvTiming:
    algorithm: str
    grid: int
    tile_kn: tuple[int, int]
    compute_cycles: float
    comm_cycles: float
    routing_cycles: float
    total_cycles: float
    colours_per_router: int
    sram_bytes_per_core: int


def gemv_timing(algorithm: str, k: int, n: int, grid: int, device, m: int = 1, ktree_k: int = 2,
                groups: int | None = None) -> GemvTiming:
    """Cycles of y (m x N) = x (m x K) @ W (K x N) with W in ``grid x grid`` tiles."""
    if algorithm not in GEMV_ALGORITHMS:
        raise AccelsimError(f"unknown GEMV algorithm {algorithm!r}", field="algorithm", allowed=GEMV_ALGORITHMS)
    device.check_grid(grid, grid)
    for name, value in (("k", k), ("n", n), ("m", m)):
        if not isinstance(value, int) or value < 1:
            raise AccelsimError(f"must be a positive integer, got {value!r}", field=name)
    for name, value in (("k", k), ("n", n)):
        if value < grid:
            raise AccelsimError(f"{name} = {value} cannot be padded onto a {grid} x {grid} grid", field=name,
                                allowed=f">= {grid} (or a smaller --grid)")
    kt, nt = -(-k // grid), -(-n // grid)
    sram = (kt * nt + m * kt + 2 * m * nt) * device.element_bytes  # W tile, x slice, partial and result
    if sram > device.sram_bytes_per_core:
        raise AccelsimError(f"GEMV needs {sram} B per core for {kt}x{nt} tiles, more than {device.name}'s "
                            f"{device.sram_bytes_per_core} B", field="grid", allowed="a larger grid")
    compute = m * kt * nt / device.macs_per_cycle
    coll = allreduce_timing(_ALLREDUCE_OF[algorithm], grid, m * nt, device, ktree_k, groups)
    return GemvTiming(algorithm, grid, (kt, nt), compute, coll.cycles, coll.routing_cycles, compute + coll.cycles,
                      coll.colours_per_router, sram)
