"""A small discrete-event engine (simpy) for tile-level tasks on units, DMA and a buffer.

Why: overlap between a 2D and a 1D array, pipeline fill and drain, DRAM bandwidth stalls and
buffer back-pressure are properties of a schedule, not of a sum of costs. Here each unit (a PE
array, a DMA engine) runs its own queue of tasks *in program order* (a statically scheduled
accelerator issues in order); a task starts when the unit is free, every task it depends on
has finished, and the buffer bytes it allocates are available. Events are coarse (a task is a
tile's worth of work, never one cycle).

Long regular streams (millions of tiles) are not simulated task by task: ``extrapolate`` runs
two truncated instances of a periodic stream and extends the measured steady-state period
linearly. That is exact only if the stream is periodic from the shorter run on; where two
units nearly balance the makespan is a maximum of affine functions of the count whose slope can
change later, so it is an approximation (errors measured in results/fusemax/NOTES.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import simpy

from accelsim.errors import AccelsimError


@dataclass(eq=False)
class Task:
    """``cycles`` of work on ``unit`` after ``deps``; may allocate and free buffer bytes."""

    name: str
    unit: str
    cycles: float
    deps: list["Task"] = field(default_factory=list)
    alloc_bytes: int = 0  # taken from the buffer before the task starts (blocks while full)
    free_bytes: int = 0  # returned to the buffer when the task ends
    start: float | None = None
    end: float | None = None
    done: simpy.Event | None = field(default=None, repr=False)


@dataclass
class Timeline:
    makespan_cycles: float
    busy_cycles: dict[str, float]
    tasks: list[Task]
    peak_buffer_bytes: int


def run(tasks: Sequence[Task], units: Sequence[str], buffer_bytes: int | None = None) -> Timeline:
    """Simulate ``tasks`` (each unit's tasks run in the order given) and return the timeline."""
    env = simpy.Environment()
    queues: dict[str, list[Task]] = {u: [] for u in units}
    for t in tasks:
        if t.unit not in queues:
            raise AccelsimError(f"task {t.name!r} names unknown unit {t.unit!r}", field="task.unit",
                                allowed=list(units))
        if t.cycles < 0:
            raise AccelsimError(f"negative duration {t.cycles}", field=f"task {t.name}")
        t.done = env.event()
        queues[t.unit].append(t)
    buffer = None
    if buffer_bytes is not None:
        need = max((t.alloc_bytes for t in tasks), default=0)
        if need > buffer_bytes:
            raise AccelsimError(f"task needs {need} bytes of buffer, only {buffer_bytes} exist", field="buffer")
        buffer = simpy.Container(env, capacity=buffer_bytes, init=buffer_bytes)
    peak = [0]
    busy = {u: 0.0 for u in units}

    def worker(unit: str):
        for t in queues[unit]:
            pending = [d.done for d in t.deps if d.end is None]
            if len(pending) == 1:
                yield pending[0]
            elif pending:
                yield env.all_of(pending)
            if buffer is not None and t.alloc_bytes:
                yield buffer.get(t.alloc_bytes)
                peak[0] = max(peak[0], buffer.capacity - buffer.level)
            t.start = env.now
            if t.cycles:
                yield env.timeout(t.cycles)
            t.end = env.now
            busy[unit] += t.cycles
            if buffer is not None and t.free_bytes:
                yield buffer.put(t.free_bytes)
            t.done.succeed()

    for u in units:
        env.process(worker(u))
    env.run()
    stuck = [t.name for t in tasks if t.end is None]
    if stuck:
        raise AccelsimError(f"deadlock: {len(stuck)} tasks never ran (first: {stuck[:3]}); a task depends on "
                            "one queued after it on the same unit, or the buffer never frees", field="schedule")
    return Timeline(max((t.end for t in tasks), default=0.0), busy, list(tasks), peak[0])


def extrapolate(simulate: Callable[[int], float], count: int, small: int, large: int) -> float:
    """Makespan of ``count`` iterations of a periodic stream from two truncated runs.

    ``simulate(n)`` returns the makespan of the first ``n`` iterations. When ``count <= large``
    the stream is simulated whole. Otherwise the period is measured between ``small`` and
    ``large`` iterations (both past the pipeline fill) and extended to ``count``.
    """
    if count <= large:
        return simulate(count)
    t_small, t_large = simulate(small), simulate(large)
    period = (t_large - t_small) / (large - small)
    return t_large + (count - large) * period
