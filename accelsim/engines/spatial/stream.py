"""The 1-pass tile stream: its makespan, exactly and fast, and its extrapolation to long layers.

The stream (what ``one_pass_stream_reference`` builds as tasks for the generic event engine):
per group of query tiles, DRAM loads the group's Q rows, then each K/V tile, then stores the
previous group's AV; the arrays run every (key tile, query tile) pair's stages in order, the
first Einsum's stage waiting for its K/V tile and the group's Q; a stage starts when the
previous one finished on both arrays (lock step); finished query tiles' final divisions run
one per tile in the final Einsum's stage. Buffer: the state of the largest group stays
allocated; every load allocates (waiting for space), a K/V tile is freed after its last query
tile, a group's Q after its last key tile.

Why a recursion and not the event engine: the compute side is a chain (each stage depends on
the whole previous stage), so its times follow from one running clock; within a key tile only
the first query tile can wait for DRAM (the tile's loads finished before it started), so the
other ``n_qt - 1`` advance the clock by a closed form. DRAM is one in-order queue whose only
waits are for its own predecessor, for buffer space (freed by the compute chain at known
times, in time order) and, for a store, for its group's end. That is the same schedule the
event engine computes (equal up to floating-point summation order; checked on random plans
against the reference), in O(groups x key tiles) instead of O(tiles x stages) simpy events:
the whole FuseMax table runs ~20x faster.
"""
from __future__ import annotations

from collections import deque
from dataclasses import replace

from accelsim.engines.events import Task, run
from accelsim.engines.spatial.costs import (
    einsum_cycles,
    one_pass_buffer_bytes,
    stage_cycles,
)
from accelsim.engines.spatial.plan import AttentionPlan
from accelsim.errors import AccelsimError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape

UNIT_REPS = (2, 3)  # streams of this many group-units measure one unit's steady-state period
# key tiles per group at which truncated streams are measured, until the per-key-tile slope
# settles; beyond the last, extended linearly
KEY_TILE_REPS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
KEY_TILE_SETTLE = 8  # ... and at least this many (shorter streams can look settled and not be)
GROUPS_STREAMED_WHOLE = 8  # a layer of at most this many groups (any key tiles) is streamed whole


def dram_cycles(nbytes: float, hw: SpatialAccelerator) -> float:
    return nbytes / hw.dram.bytes_per_cycle(hw.clock_hz)


def _stream_setup(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, groups: list[tuple[int, int]]):
    """What both stream computations (direct and event-engine reference) start from: word size,
    cascade view, K/V tile bytes, the largest group's query tiles, the running state's bytes, the
    final Einsum's unit and cycles, and the stages of the first and final Einsums."""
    w = hw.word_bytes
    c = plan.cascade_table
    kv_tile = plan.m0 * (s.e + s.f) * w
    n_q_max = max(n for n, _ in groups)
    state_bytes = one_pass_buffer_bytes(replace(plan, p1=n_q_max), s, w) - kv_tile - n_q_max * plan.p0 * s.e * w
    av_unit = plan.binding[c.final]
    av_cycles = einsum_cycles(c.einsums[c.final], av_unit, hw, s, plan.p0, plan.m0)
    qk_stage = next(i for i, st in enumerate(plan.stages) if c.first in st)
    av_stage = next(i for i, st in enumerate(plan.stages) if c.final in st)
    return w, c, kv_tile, n_q_max, state_bytes, av_unit, av_cycles, qk_stage, av_stage


def one_pass_stream(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                    groups: list[tuple[int, int]], n_kt: int, last_m0: int) -> float:
    """Makespan of consecutive groups, each ``(query tiles, size of its last query tile)``,
    every group sweeping ``n_kt`` key tiles (the last of ``last_m0`` keys): the schedule of
    ``one_pass_stream_reference`` computed directly (see the module docstring)."""
    w, c, kv_tile, n_q_max, state_bytes, av_unit, av_cycles, qk_stage, av_stage = _stream_setup(plan, hw, s, groups)
    base = [(cyc["2d"] + cyc["stall"], cyc["1d"]) for cyc in stage_cycles(plan, hw, s)]

    def durations(with_av: bool) -> list[int]:
        out = []
        for k, (two, one) in enumerate(base):
            if with_av and k == av_stage:
                two, one = (two + av_cycles, one) if av_unit == "2d" else (two, one + av_cycles)
            out.append(max(two, one))
        return out

    dur = {False: durations(False), True: durations(True)}
    period = {a: sum(d) for a, d in dur.items()}
    q_bytes = [((n - 1) * plan.p0 + last) * s.e * w for n, last in groups]
    need = max(state_bytes, kv_tile, *q_bytes)
    if need > hw.buffer_bytes:
        raise AccelsimError(f"task needs {need} bytes of buffer, only {hw.buffer_bytes} exist", field="buffer")
    level = hw.buffer_bytes - state_bytes
    frees: deque[tuple[float, int]] = deque()
    kv_end: dict[tuple[int, int], float] = {}
    q_end: dict[int, float] = {}
    group_end: dict[int, float] = {}
    clock = {"t": 0.0, "g": 0, "j": 0, "pending": 0}  # the compute chain's frontier

    def advance() -> bool:
        """Run the next key tile of the compute chain, if its loads are issued."""
        g, j, t, pending = clock["g"], clock["j"], clock["t"], clock["pending"]
        if g >= len(groups) or (g, j) not in kv_end or g not in q_end:
            return False
        n_qt = groups[g][0]
        first = dur[pending > 0]
        for k, d in enumerate(first):
            if k == qk_stage:
                t = max(t, kv_end[g, j], q_end[g])
            t = t + d
        pending = max(0, pending - 1)
        with_av = min(pending, n_qt - 1)
        t += with_av * period[True] + (n_qt - 1 - with_av) * period[False]
        pending -= with_av
        frees.append((t, kv_tile))
        if j == n_kt - 1:
            frees.append((t, q_bytes[g]))
            group_end[g] = t
            pending += n_qt
            g, j = g + 1, 0
        else:
            j += 1
        clock.update(t=t, g=g, j=j, pending=pending)
        return True

    dram_t = 0.0

    def grant(amount: int, ready: float) -> float:
        nonlocal level
        at = ready
        while level < amount:
            if not frees and not advance():
                raise AccelsimError("deadlock: a load waits for buffer space that is never freed", field="schedule")
            while frees and level < amount:
                tf, b = frees.popleft()
                level += b
                at = max(ready, tf)
        level -= amount
        return at

    for g in range(len(groups)):
        start = grant(q_bytes[g], dram_t)
        dram_t = q_end[g] = start + dram_cycles(q_bytes[g], hw)
        for j in range(n_kt):
            real_m0 = last_m0 if j == n_kt - 1 else plan.m0
            start = grant(kv_tile, dram_t)
            dram_t = kv_end[g, j] = start + dram_cycles(real_m0 * (s.e + s.f) * w, hw)
        if g:
            while g - 1 not in group_end:
                advance()
            out_bytes = ((groups[g - 1][0] - 1) * plan.p0 + groups[g - 1][1]) * s.f * w
            dram_t = max(dram_t, group_end[g - 1]) + dram_cycles(out_bytes, hw)
    while advance():
        pass
    tail_end = clock["t"] + av_cycles * clock["pending"]
    out_bytes = ((groups[-1][0] - 1) * plan.p0 + groups[-1][1]) * s.f * w
    dram_t = max(dram_t, tail_end) + dram_cycles(out_bytes, hw)
    return max(dram_t, tail_end)


def one_pass_stream_reference(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                     groups: list[tuple[int, int]], n_kt: int, last_m0: int) -> float:
    """Makespan of consecutive groups, each ``(query tiles, size of its last query tile)``,
    every group sweeping ``n_kt`` key tiles (the last of ``last_m0`` keys), as tile-level tasks
    on the generic event engine (``accelsim.engines.events``). The slow reference that
    ``one_pass_stream`` must equal (``tests/test_spatial_stream.py``).

    Buffer: the running state of ``p1`` query tiles is allocated for the whole stream (each
    group reuses it); a group's Q rows are loaded when space allows (so the next group's Q can
    prefetch during the current group) and freed after its last QK; each K/V tile is freed once
    the group's last query tile has used it. DRAM issues in order: a group's Q and K/V loads,
    then the previous group's AV store.
    """
    w, c, kv_tile, n_q_max, state_bytes, av_unit, av_cycles, qk_stage, av_stage = _stream_setup(plan, hw, s, groups)
    stages = stage_cycles(plan, hw, s)
    dram: list[Task] = []
    compute: list[Task] = [Task("state", "1d", 0, alloc_bytes=state_bytes)]
    prev_stage: list[Task] = [compute[0]]
    pending_av = 0
    prev_store: Task | None = None
    for g, (n_qt, last_p0) in enumerate(groups):
        q_bytes = ((n_qt - 1) * plan.p0 + last_p0) * s.e * w
        load_q = Task(f"g{g} load Q", "dram", dram_cycles(q_bytes, hw), alloc_bytes=q_bytes)
        dram.append(load_q)
        last_qk: list[Task] = []
        for j in range(n_kt):
            real_m0 = last_m0 if j == n_kt - 1 else plan.m0
            ld = Task(f"g{g} load KV{j}", "dram", dram_cycles(real_m0 * (s.e + s.f) * w, hw), alloc_bytes=kv_tile)
            dram.append(ld)
            for i in range(n_qt):
                for k, cyc in enumerate(stages):
                    deps = list(prev_stage) + ([ld, load_q] if k == qk_stage else [])
                    cur = []
                    for unit in ("2d", "1d"):
                        c = cyc[unit] + (cyc["stall"] if unit == "2d" else 0)
                        if k == av_stage and unit == av_unit and pending_av:
                            c += av_cycles  # one finished query tile's division per tile
                        if c:
                            cur.append(Task(f"g{g}.k{j}.q{i}.s{k}.{unit}", unit, c, deps=deps))
                    if k == av_stage:
                        pending_av = max(0, pending_av - 1)
                    if k == qk_stage and j == n_kt - 1:
                        last_qk = cur
                    compute += cur
                    prev_stage = cur or prev_stage
            compute.append(Task(f"g{g} free KV{j}", "1d", 0, deps=list(prev_stage), free_bytes=kv_tile))
        compute.append(Task(f"g{g} free Q", "1d", 0, deps=last_qk, free_bytes=q_bytes))
        pending_av += n_qt  # each finished query tile's AV division runs in a later tile's first stage
        if prev_store is not None:
            dram.append(prev_store)
        out_bytes = ((n_qt - 1) * plan.p0 + last_p0) * s.f * w
        prev_store = Task(f"g{g} store AV", "dram", dram_cycles(out_bytes, hw), deps=list(prev_stage))
    tail = Task("AV tail", av_unit, av_cycles * pending_av, deps=list(prev_stage))
    compute.append(tail)
    prev_store.deps.append(tail)
    dram.append(prev_store)
    return run(dram + compute, ["2d", "1d", "dram"], buffer_bytes=hw.buffer_bytes).makespan_cycles



def extrapolated_latency(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                          head: list[tuple[int, int]], n_units: int, n_mt: int, last_m0: int) -> float:
    """Latency of ``n_units`` heads from truncated streams (layers too long to simulate whole).

    A head is (n - 1) regular groups and a closing "mini-head" (the last full group and the
    remainder group). Layers of at most ``GROUPS_STREAMED_WHOLE`` groups are streamed whole;
    longer ones as a fill plus the steady-state time one more unit (a run of groups) adds,
    measured between streams of ``UNIT_REPS`` units. In key tiles per group, streams of growing
    length (``KEY_TILE_REPS``) are run until the per-key-tile slope is the same over three
    intervals past ``KEY_TILE_SETTLE`` tiles, then extended linearly.

    This is exact only if the stream is periodic from the measured window on. It is not in
    general: where DRAM and an array nearly balance, the makespan is a maximum of affine
    functions of the count whose slope can change after the window. The estimate is clamped to
    the exact lower bound (no unit busier than the run is long). Measured against full
    simulation (seeded random small layers, extrapolation forced): compute-bound <= 0.1%
    (``test_extrapolation_error_is_bounded`` holds it to 0.5%); DRAM-bound up to 7.5% on tiny
    layers. Hence layers up to ``FULL_SIM_MAX_TILES`` tiles are always simulated whole.
    """
    mini = head[-2:] if len(head) >= 2 and head[-1][0] != head[0][0] else head[-1:]
    n_regular = len(head) - len(mini)
    cache: dict = {}

    def stream(groups: tuple, c: int) -> float:
        key = (groups, c)
        if key not in cache:
            cache[key] = one_pass_stream(plan, hw, s, list(groups), c, last_m0)
        return cache[key]

    lo, hi = UNIT_REPS

    def unit_period(unit: tuple, c: int) -> float:
        return (stream(unit * hi, c) - stream(unit * lo, c)) / (hi - lo)

    def in_key_tiles(f, n: int) -> float:
        """f(n) from f at growing key-tile counts: extend linearly once the slopes over the last
        three intervals agree (1e-9 relative) past ``KEY_TILE_SETTLE``, or from the largest
        count tried."""
        pts = [k for k in KEY_TILE_REPS if k < n] + [n]
        slopes: list[float] = []
        for k0, k1 in zip(pts, pts[1:]):
            if k1 == n:
                return f(n)
            slopes.append((f(k1) - f(k0)) / (k1 - k0))
            last = slopes[-3:]
            if k1 >= KEY_TILE_SETTLE and len(last) == 3 and max(last) - min(last) <= 1e-9 * abs(last[-1]):
                break
        if len(pts) < 2:
            return f(n)
        return f(k1) + (n - k1) * slopes[-1]

    regular, mini_t = (head[0],), tuple(mini)

    def layer(c: int) -> float:
        """The whole layer with ``c`` key tiles per group: short group sequences streamed whole,
        long ones as a fill plus per-unit steady-state periods."""
        if n_units * len(head) <= GROUPS_STREAMED_WHOLE:
            return stream(tuple(head * n_units), c)
        p_reg = unit_period(regular, c) if n_regular else 0.0
        p_mini = unit_period(mini_t, c)
        fill = stream(mini_t * lo, c) - lo * p_mini
        return n_units * (n_regular * p_reg + p_mini) + fill

    return in_key_tiles(layer, n_mt)

