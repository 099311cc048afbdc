"""An independent exhaustive search for the minimum non-compulsory traffic (small instances only).

It shares no code with the ILP: a uniform-cost (Dijkstra) search over machine states
``(operators done, {tensor: address} on chip, tensors DRAM holds)``. Between two operators it
may drop any on-chip tensor (paying a spill if it is an intermediate DRAM does not hold yet and
is still needed), then bring in any tensors DRAM holds that are still needed, at any free
address (paying a reload, except a source's first load), including prefetches and moves
through DRAM; the next operator then needs its inputs on chip and places its output at any
free address. Tensors with no future use are dropped (keeping them only blocks space), and a
graph output is written and dropped after its step. None of the ILP's pruning rules are used.
"""
from __future__ import annotations

import heapq
from itertools import combinations, product


def brute_force(ops: list[tuple[list[int], list[int]]], sizes: list[int], capacity: int,
                order: list[int] | None = None, prefetch: bool = True) -> int | None:
    """Minimum non-compulsory bytes, or None if nothing fits. ``order`` fixes the schedule.

    ``prefetch=False`` loads only what the next operator reads (a dominance the ILP also uses;
    it makes the search much faster, so the larger cases use it and the smaller ones do not).
    """
    n = len(ops)
    producer = {outs[0]: i for i, (_, outs) in enumerate(ops)}
    consumers = {t: [i for i, (ins, _) in enumerate(ops) if t in ins] for t in range(len(sizes))}
    sources = {t for t in range(len(sizes)) if t not in producer}

    def needed_later(t: int, done: frozenset[int]) -> bool:
        return any(c not in done for c in consumers[t])

    def placements(fixed: dict[int, int], tensors: list[int]):
        """Every way to put ``tensors`` at free addresses next to ``fixed``."""
        if not tensors:
            yield {}
            return
        t, rest = tensors[0], tensors[1:]
        for off in range(0, capacity - sizes[t] + 1):
            if all(off + sizes[t] <= o or o + sizes[u] <= off for u, o in fixed.items()):
                for more in placements({**fixed, t: off}, rest):
                    yield {t: off, **more}

    start = (frozenset(), frozenset(), frozenset(sources), frozenset())  # done, resident, dram, loaded sources
    best = {start: 0}
    heap = [(0, 0, start)]
    tick = 1
    while heap:
        cost, _, state = heapq.heappop(heap)
        if best.get(state, None) != cost:
            continue
        done, resident_fs, dram, loaded = state
        if len(done) == n:
            return cost
        resident = dict(resident_fs)
        resident = {t: o for t, o in resident.items() if needed_later(t, done)}
        if order is not None:
            ready = [order[len(done)]]
        else:
            ready = [i for i in range(n) if i not in done and all(producer[t] in done for t in ops[i][0]
                                                                 if t in producer)]
        kept_choices = list(resident)
        for op in ready:
            ins, outs = ops[op]
            for r in range(len(kept_choices) + 1):
                for keep in combinations(kept_choices, r):
                    keep_set = set(keep)
                    new_dram = set(dram)
                    step_cost = cost
                    for t in kept_choices:
                        if t not in keep_set and t not in new_dram:
                            new_dram.add(t)  # spill
                            step_cost += sizes[t]
                    fixed = {t: resident[t] for t in keep}
                    must = [t for t in ins if t not in keep_set]
                    if any(t not in new_dram for t in must):
                        continue
                    optional = [t for t in new_dram if t not in keep_set and t not in must
                                and needed_later(t, done | {op}) and t not in ins] if prefetch else []
                    for pick in product((False, True), repeat=len(optional)):
                        arrivals = must + [t for t, p in zip(optional, pick) if p]
                        load_cost = sum(sizes[t] for t in arrivals if not (t in sources and t not in loaded))
                        new_loaded = loaded | {t for t in arrivals if t in sources}
                        for placed in placements(fixed, arrivals + [outs[0]]):
                            on_chip = {**fixed, **placed}
                            nxt_done = done | {op}
                            if not consumers[outs[0]]:
                                on_chip.pop(outs[0])  # graph output: stored (compulsory) and dropped
                            nxt = (frozenset(nxt_done), frozenset(on_chip.items()), frozenset(new_dram),
                                   frozenset(new_loaded))
                            c = step_cost + load_cost
                            if c < best.get(nxt, 1 << 60):
                                best[nxt] = c
                                heapq.heappush(heap, (c, tick, nxt))
                                tick += 1
    return None
