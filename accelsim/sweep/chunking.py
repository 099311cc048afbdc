"""How many points go into one task: sized from the measured cost of a point, not guessed.

Why: a fixed count is wrong at one end or the other. Cheap points (well under a millisecond) in
small tasks spend their time on per-task overhead (pickling, IPC, a Dask task's ~1 ms of
scheduling); costly points (a whole-model simulation, a COSMA solve) in large tasks leave workers
idle at the tail of the sweep and, on Dask, lose more work to an interrupt. So the first tasks are
single points, to measure; later ones hold about ``target_s`` of work at the running mean cost,
at most ``max_points``, and never more than an even share of what is left over the tasks in
flight, so the sweep's tail is spread over every worker instead of landing on one. With
``min_s`` a range never drops below that much work (unless fewer points are left): the even-share
rule alone shrinks the last ranges to single points, and for cheap points a range's fixed cost
(a task, a part file: a few milliseconds) then outweighs its work.
"""
from __future__ import annotations

import math


class ChunkSizer:
    """Sizes of successive chunks; ``fixed`` (the caller's ``chunk_size``) overrides the measurement."""

    def __init__(self, target_s: float, max_points: int, slots: int, fixed: int | None = None,
                 min_s: float = 0.0) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"chunk size must be at least 1, got {fixed}")
        self.target_s = target_s
        self.max_points = max_points
        self.slots = max(1, slots)
        self.fixed = fixed
        self.min_s = min_s
        self.per_point_s: float | None = None

    def observe(self, points: int, elapsed_s: float) -> None:
        """A chunk that *evaluated* ``points`` took ``elapsed_s`` of worker time: update the running
        mean. Callers pass evaluated points only: a range of points already on disk (the probe's, a
        resumed sweep's) costs nothing, and counting it once set the mean near zero, so the next range
        took half the sweep (80 COSMA points: one range of 39, 1.3x from 1 to 2 Dask workers)."""
        if points < 1 or elapsed_s < 0:
            return
        each = elapsed_s / points
        self.per_point_s = each if self.per_point_s is None else 0.7 * self.per_point_s + 0.3 * each

    def next_size(self, remaining: int) -> int:
        if remaining < 1:
            return 0
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if self.per_point_s is None:
            return 1
        by_time = int(self.target_s / max(self.per_point_s, 1e-9))
        fair_share = math.ceil(remaining / self.slots)
        floor = min(self.max_points, int(self.min_s / max(self.per_point_s, 1e-9)))
        return max(1, min(remaining, max(floor, min(self.max_points, by_time, fair_share))))
