"""Baselines COSMA must beat: schedule x TFLite-style arena allocation x replacement policy.

- Schedule: the framework's default topological order, or the minimum-peak order.
- Allocation: TFLite's arena planner idea (greedy by size, best fit): at each step the tensors
  that must arrive (reloaded inputs, then the output) are placed largest first, each in the
  smallest free gap that holds it (lowest address on ties). The planner runs online, step by
  step, because a replacement policy decides evictions as the schedule unfolds; a tensor keeps
  its address while resident and may get a new one when reloaded. Dead tensors are freed as
  soon as their last consumer has run.
- Replacement, when no gap fits:
  ``belady``: evict the resident tensor (not used by the current operator) whose next use is
  furthest in the future, one at a time, until a gap fits;
  ``greedy``: evict the set with the fewest bytes that opens a contiguous gap large enough (an
  exact small search over address windows: "free the deficit with the fewest bytes").
  Evicting an intermediate that DRAM does not hold yet costs a spill; every later use costs a
  reload. Belady is not optimal for variable sizes: see ``tests/test_cosma.py``.
- The offline TFLite plan (one offset per tensor lifetime, greedy by size, best fit) is used
  as it is whenever its arena fits the scratchpad (then no traffic at all); only otherwise does
  the online allocator with replacement run.
- Last resort (fragmentation around the current operator's own inputs): everything is evicted
  and the operator's working set is packed from address 0, which always fits at M_R.
- **Literal** family (``literal_baselines``): the paper's baseline as its prose describes it, the
  framework's default order run through the runtime's *online* allocator with each replacement
  policy and no offline plan tried first. It is never better than the offline-first family on
  the same order (when the offline plan fits it needs 0 bytes; otherwise both run the same
  online allocator), so it can only raise the reported reduction.
"""
from __future__ import annotations

from dataclasses import dataclass

from mappers.memory_problem import MemoryProblem, greedy_min_peak_order
from mappers.plan import Plan, plan_from_residency

POLICIES = ("belady", "greedy")
FAMILIES = ("offline-first", "literal")
SCHEDULES = ("default", "min_peak")


@dataclass
class BaselineResult:
    schedule: str
    policy: str
    plan: Plan
    non_compulsory_bytes: int

    @property
    def name(self) -> str:
        return f"{self.schedule}+{self.policy}"


def _free_gaps(resident: dict[int, int], sizes: tuple[int, ...], capacity: int) -> list[tuple[int, int]]:
    """Free (offset, length) gaps between resident tensors."""
    gaps, cursor = [], 0
    for off, end in sorted((o, o + sizes[t]) for t, o in resident.items()):
        if off > cursor:
            gaps.append((cursor, off - cursor))
        cursor = max(cursor, end)
    if capacity > cursor:
        gaps.append((cursor, capacity - cursor))
    return gaps


def _best_fit(resident: dict[int, int], sizes: tuple[int, ...], capacity: int, need: int) -> int | None:
    fits = [(length, off) for off, length in _free_gaps(resident, sizes, capacity) if length >= need]
    return min(fits)[1] if fits else None


def _cheapest_window(resident: dict[int, int], sizes: tuple[int, ...], capacity: int, need: int,
                     pinned: set[int]) -> list[int] | None:
    """Fewest evicted bytes that leave ``need`` contiguous bytes free; None if pinned tensors block it."""
    starts = {0, capacity - need}
    for t, off in resident.items():
        starts.update((off, off + sizes[t], off + sizes[t] - need))
    best: tuple[int, int, list[int]] | None = None
    for x in sorted(s for s in starts if 0 <= s <= capacity - need):
        hit = [t for t, off in resident.items() if off < x + need and x < off + sizes[t]]
        if any(t in pinned for t in hit):
            continue
        cost = sum(sizes[t] for t in hit)
        if best is None or (cost, x) < best[:2]:
            best = (cost, x, hit)
    return None if best is None else best[2]


def offline_arena(problem: MemoryProblem, order: list[int]) -> tuple[dict[int, int], int]:
    """TFLite's greedy-by-size plan: each tensor's whole lifetime gets one offset, largest first,
    in the smallest gap left by already placed tensors whose lifetimes overlap (else on top).

    Returns offsets and the arena size; nothing is spilled, so it is a mapping only when the
    arena fits the scratchpad.
    """
    sizes = problem.tensor_bytes
    iv = problem.live_intervals(order)
    todo = sorted((t for t in range(problem.n_tensors) if iv[t] is not None),
                  key=lambda t: (-sizes[t], iv[t][0], t))
    placed: dict[int, int] = {}
    top = 0
    for t in todo:
        lo, hi = iv[t]
        busy = sorted((placed[u], placed[u] + sizes[u]) for u in placed if iv[u][0] <= hi and lo <= iv[u][1])
        best, cursor = None, 0
        for start, end in busy:
            gap = start - cursor
            if gap >= sizes[t] and (best is None or gap < best[0]):
                best = (gap, cursor)
            cursor = max(cursor, end)
        off = best[1] if best is not None else cursor
        placed[t] = off
        top = max(top, off + sizes[t])
    return placed, top


def simulate(problem: MemoryProblem, capacity_bytes: int, order: list[int], policy: str) -> Plan:
    """The offline TFLite arena if it fits; else the online best-fit arena with the given replacement policy."""
    problem.check_order(order)
    problem.require_capacity(capacity_bytes)
    offsets, top = offline_arena(problem, order)
    if top <= capacity_bytes:
        iv = problem.live_intervals(order)
        history: list[dict[int, int]] = [dict() for _ in order]
        for t, off in offsets.items():
            for step in range(iv[t][0], iv[t][1] + 1):
                history[step][t] = off
        return plan_from_residency(problem, list(order), history, [])
    return simulate_online(problem, capacity_bytes, order, policy)


def simulate_online(problem: MemoryProblem, capacity_bytes: int, order: list[int], policy: str) -> Plan:
    """Run ``order`` through the online best-fit arena with the given replacement policy."""
    if policy not in POLICIES:
        from accelsim.errors import AccelsimError

        raise AccelsimError(f"unknown replacement policy {policy!r}", field="policy", allowed=POLICIES)
    problem.check_order(order)
    problem.require_capacity(capacity_bytes)
    sizes, cap = problem.tensor_bytes, capacity_bytes
    pos = {op: s for s, op in enumerate(order)}
    uses = [sorted(pos[c] for c in problem.consumers[t]) for t in range(problem.n_tensors)]
    in_dram = {t for t in range(problem.n_tensors) if problem.is_source(t)}
    resident: dict[int, int] = {}
    history: list[dict[int, int]] = []
    spills: list[tuple[int, int]] = []

    def next_use(t: int, step: int) -> int | None:
        return next((u for u in uses[t] if u >= step), None)

    def evict(t: int, step: int) -> None:
        if t not in in_dram:
            spills.append((t, step))
            in_dram.add(t)
        del resident[t]

    for step, op in enumerate(order):
        for t in [t for t in resident if next_use(t, step) is None]:
            del resident[t]  # dead: its last consumer has run (graph outputs were stored)
        needed = set(problem.op_inputs[op]) | set(problem.op_outputs[op])
        arriving = sorted((t for t in needed if t not in resident), key=lambda t: (-sizes[t], t))
        placed_now: set[int] = set()
        for t in arriving:
            while (off := _best_fit(resident, sizes, cap, sizes[t])) is None:
                pinned = (needed & set(resident)) | placed_now
                candidates = [c for c in resident if c not in pinned]
                if policy == "belady" and candidates:
                    victim = max(candidates, key=lambda c: (next_use(c, step), sizes[c], -c))
                    evict(victim, step)
                    continue
                if policy == "greedy":
                    window = _cheapest_window(resident, sizes, cap, sizes[t], pinned)
                    if window is not None:
                        for c in window:
                            evict(c, step)
                        continue
                # last resort: clear everything and pack the working set from address 0; an input
                # that has to move goes through DRAM (spilled first if DRAM lacks it, then reloaded)
                before = {u: o for u, o in resident.items() if u not in placed_now}
                for c in [c for c in resident if c not in needed]:
                    evict(c, step)
                resident.clear()
                placed_now.clear()
                cursor = 0
                for u in sorted(needed, key=lambda u: (-sizes[u], u)):
                    resident[u] = cursor
                    cursor += sizes[u]
                    placed_now.add(u)
                    if u in before and before[u] != resident[u] and u not in in_dram:
                        spills.append((u, step))
                        in_dram.add(u)
                break
            if t in placed_now:
                continue
            resident[t] = off
            placed_now.add(t)
        history.append(dict(resident))
    return plan_from_residency(problem, list(order), history, spills)


def run_baselines(problem: MemoryProblem, capacity_bytes: int,
                  min_peak_order: list[int] | None = None) -> list[BaselineResult]:
    """All four baselines; ``min_peak_order`` defaults to the greedy minimum-peak heuristic."""
    orders = {"default": list(range(problem.n_ops)),
              "min_peak": min_peak_order if min_peak_order is not None else greedy_min_peak_order(problem)}
    results = []
    for sched, order in orders.items():
        for policy in POLICIES:
            plan = simulate(problem, capacity_bytes, order, policy)
            results.append(BaselineResult(sched, policy, plan, plan.non_compulsory_bytes(problem)))
    return results


def best_baseline(problem: MemoryProblem, capacity_bytes: int,
                  min_peak_order: list[int] | None = None) -> BaselineResult:
    return min(run_baselines(problem, capacity_bytes, min_peak_order), key=lambda r: r.non_compulsory_bytes)


def literal_baselines(problem: MemoryProblem, capacity_bytes: int) -> list[BaselineResult]:
    """Default order, online best-fit arena, Belady or greedy replacement, no offline planning."""
    order = list(range(problem.n_ops))
    out = []
    for policy in POLICIES:
        plan = simulate_online(problem, capacity_bytes, order, policy)
        out.append(BaselineResult("literal", policy, plan, plan.non_compulsory_bytes(problem)))
    return out
