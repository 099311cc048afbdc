"""C = A @ B^T on an n x n core grid without transposing B: WaferLLM's prefill score GEMM.

Why its own schedule: attention scores are Q @ K^T, and K comes out of its projection laid out
like Q (token rows along y, features along x). MeshGEMM would need K^T, i.e. a mesh transpose
(tile (i, j) to core (j, i), up to 2 (n - 1) hops per tile). WaferLLM's prefill kernel
(MeshInfra/WaferLLM Prefill/WSE-2/src/prefill.csl @44ba9c4, ``matmul_T_computation``) instead
keeps Q in place and rotates K along y on the interleaved two-hop ring
(``mm_two_hop_comm_T``, asynchronous); every step each core multiplies its Q tile by the K tile
it holds (an Mt x Nt partial over its Kt features), and ``matmul_T_reduce_add`` then sums the
partials of the row into the core that owns that token block (``reduce_root`` follows the ring
position), synchronously, before the step ends. So a step costs max(shift, multiply + reduce).

The reduce is modelled as a pipelined chain towards the root from both sides (the relay the
WaferLLM comm library uses for its K-tree's first phase). Each row visits every root once and
rows start at different ring offsets, so in one step the rows' roots sit in different places;
rows are coupled only through the K shifts (``_steps_with_row_coupling``), so a row with a far
root does not stall the others for the whole step. The schedule is executed on numpy tiles in
``execute_transposed`` (the same moves and the same reduce streams).
"""
from __future__ import annotations

import numpy as np

from accelsim.engines.mesh.collectives import collective_streams
from accelsim.engines.mesh.functional import run_vector_streams
from accelsim.engines.mesh.gemm import GemmTiming, Move, move_streams, step_moves, tiles
from accelsim.engines.mesh.netsim import routing_rules, simulate_streams
from accelsim.engines.mesh.rings import interleaved_ring
from accelsim.errors import AccelsimError


def row_reduce_cycles(p: int, root: int, wavelets: int, alpha: float, beta: float, link_rate: float = 1.0,
                      ramp_rate: float | None = None) -> float:
    """A pipelined chain reduce of ``wavelets`` over ``p`` cores into ``root``, from both sides.

    Each side is the HPDC'24 chain, B + (alpha + beta) L for L relay stages; with a one-lane ramp
    the root takes the two sides' streams one after the other, so the nearer side (L1 stages,
    head at (alpha + beta) L1) holds the root's on-ramp for B first. ``tests/test_mesh_ramps.py``
    checks this against the hop-by-hop simulation for every root."""
    rate = min(link_rate, ramp_rate) if ramp_rate is not None else link_rate
    occupancy = wavelets / rate
    near, far = sorted((root, p - 1 - root))
    stage = alpha + beta
    one_lane = ramp_rate is not None and ramp_rate < 2 * rate
    if near == 0 or not one_lane:
        return far * stage + occupancy
    return max(far * stage, near * stage + occupancy) + occupancy


def _steps_with_row_coupling(grid: int, local: float, shift: float, reduce_of_root: np.ndarray) -> float:
    """Cycles of the grid steps when rows are coupled only through the K shifts.

    Row y (ring position q) holds token block (q + s) mod n at step s, so its reduce goes to the core
    of that block; its step ends after multiply + reduce, and it cannot start step s + 1 before the
    rows it receives from and sends to have started step s and one shift has passed (the sender's
    send completes only when the receiver has posted its receive). Max-plus recurrence per row."""
    order = np.array(interleaved_ring(grid))
    ring_pos = np.empty(grid, dtype=int)
    ring_pos[order] = np.arange(grid)
    pred = order[(ring_pos + 1) % grid]  # the row that sends this row its next K tile
    succ = order[(ring_pos - 1) % grid]
    start = np.zeros(grid)
    end = start
    for s in range(grid):
        roots = order[(ring_pos + s) % grid]
        end = start + local + reduce_of_root[roots]
        start = np.maximum(end, np.maximum(start[pred], start[succ]) + shift)
    return float(end.max())


def transposed_gemm_timing(m: int, k: int, n_: int, grid: int, device, ramps: bool = True,
                           work_fraction: float = 1.0) -> GemmTiming:
    """Cycles of C (m x n) = A (m x k) @ B^T with B stored as n x k, on a ``grid x grid`` part of
    ``device``. ``work_fraction`` scales the multiply (causal attention skips masked products)."""
    device.check_grid(grid, grid)
    mt, kt, nt = tiles(m, k, n_, grid)
    sram = (mt * kt + 2 * nt * kt + 2 * mt * nt) * device.element_bytes  # Q, double-buffered K, partial, scores
    if sram > device.sram_bytes_per_core:
        raise AccelsimError(f"the transposed GEMM needs {sram} B per core for {mt}x{kt}x{nt} tiles, more "
                            f"than {device.name}'s {device.sram_bytes_per_core} B SRAM", field="grid",
                            allowed="a larger grid or a smaller matrix")
    ramp = device.ramp_wavelets_per_cycle if ramps else None
    net = (device.alpha_cycles, device.beta_cycles, device.link_wavelets_per_cycle, ramp)
    local = mt * kt * nt * work_fraction / device.macs_per_cycle
    if grid == 1:
        return GemmTiming("meshgemm_t", 1, (mt, kt, nt), local, 0.0, 0.0, local, 0, sram, 0)
    # B tiles rotate along y only: columns share no link or ramp, so column 0 is every column
    shift_plan = move_streams(step_moves("meshgemm", grid, 0, [], [0]), {"B": device.wavelets(nt * kt)})
    shift = simulate_streams(shift_plan, *net).makespan_cycles
    partial = device.wavelets(mt * nt)
    reduce_of_root = np.array([row_reduce_cycles(grid, r, partial, *net) for r in range(grid)])
    reduce_plan = collective_streams("reduce", "chain", grid, mt * nt, device.elements_per_wavelet, root=grid // 2)
    colours = routing_rules(shift_plan)[0] + routing_rules(reduce_plan)[0]  # both plans stay routed at once
    if colours > device.routing_colours:
        raise AccelsimError(f"the transposed GEMM needs {colours} colours at one router, {device.name} routes "
                            f"{device.routing_colours}", field="routing", allowed=f"<= {device.routing_colours}")
    total = _steps_with_row_coupling(grid, local, shift, reduce_of_root)
    comm = grid * shift + float(reduce_of_root.sum())  # every row visits every root once
    routing = grid * 2 * device.beta_cycles
    return GemmTiming("meshgemm_t", grid, (mt, kt, nt), local * grid, comm, routing, total, colours, sram,
                      max(s.hops for s in shift_plan))


def execute_transposed(a: np.ndarray, b: np.ndarray, grid: int) -> np.ndarray:
    """Run the schedule on numpy tiles: B rotates through the simulated moves, every step's partials
    are summed by the simulated chain-reduce streams; returns A @ B^T."""
    m, k = a.shape
    n_ = b.shape[0]
    mt, kt, nt = tiles(m, k, n_, grid)
    ap = np.zeros((mt * grid, kt * grid)); ap[:m, :k] = a
    bp = np.zeros((nt * grid, kt * grid)); bp[:n_, :k] = b
    order = interleaved_ring(grid)
    logical = {phys: q for q, phys in enumerate(order)}
    # core (x, y) keeps A block (row block logical[y], feature block logical[x]); the B tile it holds
    # starts as token block logical[y] of the same feature block and moves with the column shifts
    held = {(x, y): (logical[y], bp[logical[y] * nt:(logical[y] + 1) * nt, logical[x] * kt:(logical[x] + 1) * kt])
            for x in range(grid) for y in range(grid)}
    out = np.zeros((mt * grid, nt * grid))
    for s in range(grid):
        for y in range(grid):
            qy = logical[y]
            token_block = held[(0, y)][0]
            partial = {(x, y): (ap[qy * mt:(qy + 1) * mt, logical[x] * kt:(logical[x] + 1) * kt]
                                @ held[(x, y)][1].T).ravel() for x in range(grid)}
            root = order[token_block]  # the core whose logical column is this token block
            streams = collective_streams("reduce", "chain", grid, mt * nt, 1, root=root, row=y) if grid > 1 else []
            summed = run_vector_streams(streams, partial) if streams else partial
            out[qy * mt:(qy + 1) * mt, token_block * nt:(token_block + 1) * nt] = summed[(root, y)].reshape(mt, nt)
        if s < grid - 1:
            _shift(step_moves("meshgemm", grid, s, [], range(grid)), held)
    return out[:m, :n_]


def _shift(moves: list[Move], held: dict) -> None:
    arrivals = {}
    for mv in moves:
        arrivals[(mv.line, mv.b)] = held[(mv.line, mv.a)]
    held.update(arrivals)
