"""Logical rings laid out on a line of N cores.

Why it matters: Cannon's algorithm shifts tiles around a ring. Laid out in physical order
0, 1, ..., N-1 the wrap-around edge N-1 -> 0 crosses N-1 hops, so every shift step waits for
the farthest core. WaferLLM's MeshGEMM (He et al., OSDI'25, §4) lays the ring out interleaved,
0, 2, 4, ..., (the largest), ..., 5, 3, 1: even positions going out, odd ones coming back, so
every logical neighbour is at most two physical hops away and a shift step costs the same on
any grid size.
"""
from __future__ import annotations

from accelsim.errors import AccelsimError


def interleaved_ring(n: int) -> list[int]:
    """Physical positions in ring order: evens ascending, then odds descending."""
    if n < 1:
        raise AccelsimError(f"a ring needs at least one core, got {n}", field="grid")
    return list(range(0, n, 2)) + list(range(n - 1 - (n % 2 == 1), 0, -2)) if n > 1 else [0]


def sequential_ring(n: int) -> list[int]:
    """Cannon's ring: physical order, closed by the wrap-around edge."""
    if n < 1:
        raise AccelsimError(f"a ring needs at least one core, got {n}", field="grid")
    return list(range(n))


def successor_map(order: list[int]) -> dict[int, int]:
    """Physical position -> the physical position of its successor on the ring."""
    return {order[i]: order[(i + 1) % len(order)] for i in range(len(order))}


def ring_hops(order: list[int]) -> list[int]:
    """Physical hops of every logical edge (including the closing one)."""
    return [abs(order[(i + 1) % len(order)] - order[i]) for i in range(len(order))]
