"""Distributed GEMM on an n x n core grid: MeshGEMM, Cannon, SUMMA and allgather-GEMM.

Why these four: WaferLLM (He et al., OSDI'25, §4, Fig. 9) compares MeshGEMM with SUMMA and
Cannon; allgather-GEMM (gather whole panels, then one local GEMM) is the memory-hungry
alternative that the 48 KB SRAM rules out at scale. All run C = A @ B with A (M x K), B (K x N)
padded to multiples of n and cut into Mt x Kt and Kt x Nt tiles, C tile (i, j) on one core.

Schedules are lists of tile moves per step (``step_moves``), shared by the timing (moves become
``netsim`` streams) and by the numpy execution (``execute``), so a schedule that puts the wrong
tile in the wrong place fails the functional check. MeshGEMM overlaps a step's shift with its
Kt rank-1 updates, as WaferLLM's meshgemm.csl does; the baselines shift, then multiply (their
kernels are not public). The shifts of A and B share every core's ramps (``step_cycles``).

- ``cannon``: tiles pre-skewed at load; each step shifts A one core west and B one core north,
  cyclic in physical order, so the wrap-around tile crosses n - 1 hops.
- ``meshgemm``: the same on the interleaved ring (``rings.interleaved_ring``): at most 2 hops.
- ``summa``: at step s the cores of column s multicast their A tile along their row and the
  cores of row s their B tile along their column (routes change every step).
- ``allgather``: ring-allgather of A along rows and B along columns (n - 1 steps, interleaved
  ring), then one local GEMM of the whole panels.

Time of a step is simulated on one representative row and column(s): every row runs the same
moves on links no other row uses; with ramps, A tiles book them first and B columns are
simulated against those bookings, so this equals the full-mesh simulation
(``tests/test_mesh_gemm.py`` and ``tests/test_mesh_ramps.py`` check it on small grids).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from accelsim.engines.mesh.netsim import (
    Stream,
    assign_colours,
    line_path,
    routing_rules,
    rx,
    simulate_streams,
    tx,
)
from accelsim.engines.mesh.rings import interleaved_ring, sequential_ring
from accelsim.errors import AccelsimError

GEMM_ALGORITHMS = ("meshgemm", "cannon", "summa", "allgather")


@dataclass(frozen=True)
class Move:
    """Tile ``which`` (A or B) moves along ``axis`` of line ``line`` from position ``a`` to ``b``."""

    which: str
    axis: str  # "x": along a row (line = row index), "y": along a column (line = column index)
    line: int
    a: int
    b: int
    multicast: bool = False

    def path(self):
        return line_path(self.a, self.b, self.line, self.axis)


def ring_order(algorithm: str, n: int) -> list[int]:
    return sequential_ring(n) if algorithm in ("cannon", "summa") else interleaved_ring(n)


def steps(algorithm: str, n: int) -> int:
    """Communication steps of a schedule."""
    if algorithm in ("cannon", "meshgemm"):
        return n - 1
    if algorithm == "summa":
        return n
    if algorithm == "allgather":
        return n - 1
    raise AccelsimError(f"unknown GEMM algorithm {algorithm!r}", field="algorithm", allowed=GEMM_ALGORITHMS)


def step_moves(algorithm: str, n: int, step: int, rows: Iterable[int], cols: Iterable[int]) -> list[Move]:
    """Moves of one step on rows ``rows`` (A tiles) and columns ``cols`` (B tiles)."""
    moves: list[Move] = []
    if algorithm in ("cannon", "meshgemm", "allgather"):
        order = ring_order(algorithm, n)
        for q in range(n):  # ring position q receives from q + 1 (a "west/north" shift in ring order)
            src, dst = order[(q + 1) % n], order[q]
            if src == dst:
                continue
            moves += [Move("A", "x", r, src, dst) for r in rows]
            moves += [Move("B", "y", c, src, dst) for c in cols]
        return moves
    if algorithm == "summa":
        for end in (0, n - 1):
            if end != step:
                moves += [Move("A", "x", r, step, end, True) for r in rows]
                moves += [Move("B", "y", c, step, end, True) for c in cols]
        return moves
    raise AccelsimError(f"unknown GEMM algorithm {algorithm!r}", field="algorithm", allowed=GEMM_ALGORITHMS)


def move_streams(moves: list[Move], wavelets: dict[str, int]) -> list[Stream]:
    out = []
    for mv in moves:
        direction = 1 if mv.b > mv.a else -1
        colour = (mv.which, direction, "bcast") if mv.multicast else (mv.which, direction, mv.a % 3)
        if not mv.multicast and abs(mv.b - mv.a) > 2:
            colour = (mv.which, direction, "wrap")  # Cannon's long edge has a route of its own
        # A tiles book the shared ramps first (see step_cycles: why a fixed order)
        out.append(Stream(mv.path(), wavelets[mv.which], colour, multicast=mv.multicast, tag=mv,
                          priority=0 if mv.which == "A" else 1))
    return assign_colours(out)


def step_cycles(algorithm: str, grid: int, step: int, wavelets: dict[str, int], alpha: float, beta: float,
                link_rate: float = 1.0, ramp_rate: float | None = None) -> float:
    """Makespan of one communication step, simulated on one representative row and column(s).

    Without ramps, rows (A tiles) and columns (B tiles) share nothing, so row 0 and column 0
    are the whole story. With ramps, every core's off- and on-ramp carries its row's A tile and
    its column's B tile. A tiles book the ramps first (``priority``), so every row's A traffic is
    row 0's A traffic translated, and column c's B traffic sees, at every core of the column,
    the ramp bookings A left at core (c, 0). Columns with the same bookings behave alike, so
    one column per distinct booking is simulated. ``tests/test_mesh_gemm.py`` checks this against
    the full mesh.
    """
    if ramp_rate is None:
        streams = move_streams(step_moves(algorithm, grid, step, [0], [0]), wavelets)
        return simulate_streams(streams, alpha, beta, link_rate).makespan_cycles
    a_streams = move_streams(step_moves(algorithm, grid, step, [0], []), wavelets)
    a_res = simulate_streams(a_streams, alpha, beta, link_rate, ramp_rate)
    worst = a_res.makespan_cycles
    lanes = max(1, int(ramp_rate // min(link_rate, ramp_rate)))
    by_column = {c: tuple(tuple(a_res.free_after.get(ramp((c, 0)), ())) for ramp in (tx, rx)) for c in range(grid)}
    for c, booked in _latest_bookings(by_column, lanes).items():
        b_streams = move_streams(step_moves(algorithm, grid, step, [], [c]), wavelets)
        if not b_streams:
            continue
        reserved = {ramp((c, y)): list(lanes) for y in range(grid) for ramp, lanes in zip((tx, rx), booked) if lanes}
        worst = max(worst, simulate_streams(b_streams, alpha, beta, link_rate, ramp_rate, reserved).makespan_cycles)
    return worst


@dataclass
class GemmTiming:
    algorithm: str
    grid: int
    tile_mkn: tuple[int, int, int]
    compute_cycles: float
    comm_cycles: float
    routing_cycles: float  # the beta (relay-stage) share of comm on the critical path
    total_cycles: float
    colours_per_router: int
    sram_bytes_per_core: int
    max_hops: int

    @property
    def exposed_comm_cycles(self) -> float:
        """Communication the schedule does not hide behind the multiplies (total minus compute)."""
        return max(0.0, self.total_cycles - self.compute_cycles)


def tiles(m: int, k: int, n_: int, grid: int) -> tuple[int, int, int]:
    for name, value in (("m", m), ("k", k), ("n", n_)):
        if not isinstance(value, int) or value < 1:
            raise AccelsimError(f"must be a positive integer, got {value!r}", field=name)
        if value < grid:
            raise AccelsimError(f"{name} = {value} cannot be padded onto a {grid} x {grid} grid: every core "
                                f"needs at least one row and column of each tile", field=name,
                                allowed=f">= {grid} (or a smaller --grid)")
    return -(-m // grid), -(-k // grid), -(-n_ // grid)


def sram_elements(algorithm: str, grid: int, mt: int, kt: int, nt: int) -> int:
    """Per-core working set: double-buffered A and B tiles plus C (WaferLLM meshgemm.csl), or whole
    panels for allgather."""
    if algorithm == "allgather":
        return grid * (mt * kt + kt * nt) + mt * nt
    return 2 * (mt * kt + kt * nt) + mt * nt


def alignment_steps(algorithm: str, grid: int) -> int:
    """A-tile shift steps before the first multiply: WaferLLM's meshgemm.csl (and prefill.csl) runs
    ``left_matrix_shift`` P/2 times (``step < P/2``) to skew the left matrix into Cannon order;
    Cannon needs the same skew. SUMMA and allgather start from the natural layout."""
    return grid // 2 if algorithm in ("cannon", "meshgemm") and grid > 1 else 0


def gemm_timing(algorithm: str, m: int, k: int, n_: int, grid: int, device, overlap: bool | None = None,
                ramps: bool = True) -> GemmTiming:
    """Cycles of C = A @ B on a ``grid x grid`` part of ``device`` (a ``MeshDevice``).

    ``overlap`` (default, as the kernels do): WaferLLM's meshgemm.csl launches the asynchronous
    shift of the next step's tiles (``two_hop_comm``: four async ``@mov16``) before the step's
    FMAC loop on the tiles it is sending, and joins both before the next step (``next_step`` is
    activated by the compute and unblocked by the shifts), so a step costs max(compute, shift);
    it runs P such steps (the last shift returns the tiles home). The sharing of SRAM ports
    between the async moves and the FMACs is not modelled (no published arbitration figure).
    The baselines' kernels (Cannon, SUMMA) are not public, so by default (``overlap=None``) only
    MeshGEMM overlaps and the baselines shift (or broadcast), then multiply: an assumption.
    ``ramps``: the shifts share each core's ramps (``device.ramp_wavelets_per_cycle``).
    """
    if overlap is None:
        overlap = algorithm == "meshgemm"
    if algorithm not in GEMM_ALGORITHMS:
        raise AccelsimError(f"unknown GEMM algorithm {algorithm!r}", field="algorithm", allowed=GEMM_ALGORITHMS)
    device.check_grid(grid, grid)
    mt, kt, nt = tiles(m, k, n_, grid)
    sram = sram_elements(algorithm, grid, mt, kt, nt) * device.element_bytes
    if sram > device.sram_bytes_per_core:
        raise AccelsimError(f"{algorithm} needs {sram} B per core for {mt}x{kt}x{nt} tiles, more than "
                            f"{device.name}'s {device.sram_bytes_per_core} B SRAM", field="grid",
                            allowed="a larger grid or a smaller matrix")
    wav = {"A": device.wavelets(mt * kt), "B": device.wavelets(kt * nt)}
    ramp_rate = device.ramp_wavelets_per_cycle if ramps else None
    net = (device.alpha_cycles, device.beta_cycles, device.link_wavelets_per_cycle, ramp_rate)
    local = mt * kt * nt / device.macs_per_cycle
    n_steps = steps(algorithm, grid)
    colours, max_hops = 0, 0
    # Cannon, MeshGEMM and allgather repeat one pattern each step: simulate it once
    distinct = range(n_steps) if algorithm == "summa" else range(min(1, n_steps))
    per_step = []
    cache: dict[int, float] = {}
    for s in distinct:
        mirror = grid - 1 - s  # a broadcast from column s costs what one from column n-1-s costs
        if algorithm == "summa" and mirror in cache:
            per_step.append(cache[mirror])
            continue
        plan = move_streams(step_moves(algorithm, grid, s, [0], [0]), wav)
        used, conflicts = routing_rules(plan)
        if conflicts:
            raise AccelsimError(f"{algorithm} routing plan conflicts: {conflicts[0]}", field="routing")
        cache[s] = step_cycles(algorithm, grid, s, wav, *net)
        per_step.append(cache[s])
        colours, max_hops = max(colours, used), max(max_hops, max(st.hops for st in plan))
    if colours > device.routing_colours:
        raise AccelsimError(f"{algorithm} needs {colours} colours at one router, {device.name} routes "
                            f"{device.routing_colours}", field="routing", allowed=f"<= {device.routing_colours}")
    if algorithm != "summa":
        per_step = per_step * n_steps
    n_align = alignment_steps(algorithm, grid)
    # an A-only step: rows share no link or ramp, so row 0 is every row
    align = n_align * simulate_streams(move_streams(step_moves(algorithm, grid, 0, [0], []), wav),
                                       *net).makespan_cycles if n_align else 0.0
    comm = float(sum(per_step)) + align
    routing = device.beta_cycles * (len(per_step) + n_align)
    compute = local * grid
    if algorithm == "allgather":
        total = comm + compute
    elif not overlap:
        total = align + float(sum(local + c for c in per_step)) + (local if algorithm != "summa" else 0.0)
    elif algorithm == "summa":  # double-buffered: the broadcast of step s + 1 during the multiply of step s
        total = per_step[0] + float(sum(max(local, c) for c in per_step[1:])) + local
    else:
        shift = per_step[0] if per_step else 0.0
        total = align + grid * max(local, shift)
    return GemmTiming(algorithm, grid, (mt, kt, nt), compute, comm, routing, total, colours, sram, max_hops)


def _latest_bookings(by_column: dict[int, tuple], lanes: int) -> dict[int, tuple]:
    """The columns whose ramp bookings no other column's dominate (one per distinct booking).

    Why this is enough: B streams carry no dependencies, so they are placed in a fixed order and
    every time they get is a max of sums of the booked free times; later bookings can only make
    a column's step later. A column booked no later than another, lane by lane, cannot be the
    slowest one."""
    width = [min(lanes, max((len(b[i]) for b in by_column.values()), default=0)) for i in range(2)]

    def key(booked: tuple) -> tuple:  # an unused lane is free from time 0
        return tuple(tuple(sorted(list(b) + [0.0] * (w - len(b)))) for b, w in zip(booked, width))

    keys = {c: key(b) for c, b in by_column.items()}
    distinct: dict[tuple, int] = {}
    for c, k in keys.items():
        distinct.setdefault(k, c)

    def dominates(other: tuple, k: tuple) -> bool:
        return all(x <= y for kk, oo in zip(k, other) for x, y in zip(kk, oo))

    front: list[tuple] = []  # a key can only be dominated by one that sorts after it
    for k in sorted(distinct, reverse=True):
        if not any(dominates(f, k) for f in front):
            front.append(k)
    return {distinct[k]: by_column[distinct[k]] for k in front}


def full_mesh_step_cycles(algorithm: str, grid: int, step: int, wavelets: dict[str, int], alpha: float,
                          beta: float, link_rate: float = 1.0, ramp_rate: float | None = None) -> float:
    """Makespan of one step with every row and column simulated together (for the symmetry check)."""
    streams = move_streams(step_moves(algorithm, grid, step, range(grid), range(grid)), wavelets)
    return simulate_streams(streams, alpha, beta, link_rate, ramp_rate).makespan_cycles


def execute(algorithm: str, a: np.ndarray, b: np.ndarray, grid: int) -> np.ndarray:
    """Run the schedule on numpy tiles through the same moves and return C (checks correctness)."""
    mt, kt, nt = tiles(a.shape[0], a.shape[1], b.shape[1], grid)
    ap = np.zeros((mt * grid, kt * grid)); ap[:a.shape[0], :a.shape[1]] = a
    bp = np.zeros((kt * grid, nt * grid)); bp[:b.shape[0], :b.shape[1]] = b
    blk_a = lambda i, j: ap[i * mt:(i + 1) * mt, j * kt:(j + 1) * kt]
    blk_b = lambda i, j: bp[i * kt:(i + 1) * kt, j * nt:(j + 1) * nt]
    order = ring_order(algorithm, grid)
    logical = {phys: q for q, phys in enumerate(order)}
    c = {}
    held_a, held_b = {}, {}
    for x in range(grid):
        for y in range(grid):
            qx, qy = logical[x], logical[y]  # C tile (qy, qx) lives at physical core (x, y)
            skew = (qx + qy) % grid if algorithm in ("cannon", "meshgemm") else qx if algorithm == "allgather" else None
            held_a[(x, y)] = [blk_a(qy, skew if skew is not None else qx)]
            held_b[(x, y)] = [blk_b(skew if skew is not None else qy, qx) if algorithm != "allgather"
                              else blk_b(qy, qx)]
            c[(x, y)] = np.zeros((mt, nt))
    n_steps = steps(algorithm, grid)
    if algorithm in ("cannon", "meshgemm"):
        for s in range(grid):
            for core in c:
                c[core] += held_a[core][-1] @ held_b[core][-1]
            if s < n_steps:
                _apply(step_moves(algorithm, grid, s, range(grid), range(grid)), held_a, held_b, replace=True)
    elif algorithm == "summa":
        for s in range(n_steps):
            recv_a = {core: held_a[core][0] for core in c if core[0] == s}
            recv_b = {core: held_b[core][0] for core in c if core[1] == s}
            inbox_a, inbox_b = {k: [v] for k, v in recv_a.items()}, {k: [v] for k, v in recv_b.items()}
            for mv in step_moves(algorithm, grid, s, range(grid), range(grid)):
                src = (mv.a, mv.line) if mv.axis == "x" else (mv.line, mv.a)
                tile = held_a[src][0] if mv.which == "A" else held_b[src][0]
                for core in mv.path()[1:]:
                    (inbox_a if mv.which == "A" else inbox_b)[core] = [tile]
            for core in c:
                c[core] += inbox_a[core][0] @ inbox_b[core][0]
    else:  # allgather: gather every tile of the row (A) and column (B), then one local GEMM
        for s in range(n_steps):
            _apply(step_moves(algorithm, grid, s, range(grid), range(grid)), held_a, held_b, replace=False)
        for (x, y) in c:
            qx, qy = logical[x], logical[y]
            # the j-th A tile that arrived came from ring position qx + j: block column (qx + j) mod grid
            for j in range(grid):
                kblk = (qx + j) % grid
                b_tile = held_b[(x, y)][[(qy + jj) % grid for jj in range(grid)].index(kblk)]
                c[(x, y)] += held_a[(x, y)][j] @ b_tile
    out = np.zeros((mt * grid, nt * grid))
    for (x, y), tile in c.items():
        qx, qy = logical[x], logical[y]
        out[qy * mt:(qy + 1) * mt, qx * nt:(qx + 1) * nt] = tile
    return out[:a.shape[0], :b.shape[1]]


def _apply(moves: list[Move], held_a: dict, held_b: dict, replace: bool) -> None:
    """Deliver each move's newest tile; shifts replace the held tile, gathers append."""
    arrivals: dict = {}
    for mv in moves:
        src = (mv.a, mv.line) if mv.axis == "x" else (mv.line, mv.a)
        dst = (mv.b, mv.line) if mv.axis == "x" else (mv.line, mv.b)
        held = held_a if mv.which == "A" else held_b
        arrivals[(mv.which, dst)] = held[src][-1]
    for (which, dst), tile in arrivals.items():
        held = held_a if which == "A" else held_b
        if replace:
            held[dst] = [tile]
        else:
            held[dst].append(tile)


def plan_colours(algorithm: str, grid: int) -> int:
    """Colours at the busiest router for the whole schedule (static routes: all steps together)."""
    wav = {"A": 1, "B": 1}
    if algorithm == "summa":
        return max(routing_rules(move_streams(step_moves(algorithm, grid, s, [0], [0]), wav))[0]
                   for s in range(grid))
    return routing_rules(move_streams(step_moves(algorithm, grid, 0, [0], [0]), wav))[0]
