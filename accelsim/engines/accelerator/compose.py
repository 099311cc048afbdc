"""A Graph's work as tile-level tasks on the matrix unit, the vector unit, DMA and links.

Why an event simulation and not a sum: a decode step streams weights while the arrays compute,
a prefill keeps the arrays busy while DMA hides behind them; the overlap, the pipeline fill and
where each unit waits are properties of the schedule. Each Einsum's work (``lowering``) is cut
into ``n`` tiles (n grows with its off-chip bytes, at most ``max_tiles``): load tile i on DMA,
compute it on the Einsum's unit, store its share of the output. Double buffering: tile i+2 is
loaded only when tile i has been computed (two buffer halves). An Einsum's first tile waits for
the last tile of every producer (on-chip data) or for the producer's stores (spilled data).
Units issue in program order (a statically scheduled accelerator). The DMA queue reads and
writes over one DRAM interface; an Einsum's stores are queued after the next Einsum's first two
loads, so its weights stream in while this one finishes (cross-operator prefetch).

``overlap=False`` chains every task after the previous one: the total is then the sum of all
compute, DMA and link time (the no-overlap bound the issue's checks compare against).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from accelsim.engines.accelerator.chips import Chip
from accelsim.engines.accelerator.lowering import OpWork
from accelsim.engines.events import Task, run
from accelsim.ir import Einsum, Graph

UNITS = ("matrix", "vector", "dma", "link")


@dataclass
class _Scheduled:
    work: OpWork
    loads: list[Task] = field(default_factory=list)
    computes: list[Task] = field(default_factory=list)
    stores: list[Task] = field(default_factory=list)

    @property
    def last(self) -> Task:
        """The task after which the Einsum's output exists on chip."""
        return (self.computes or self.stores or self.loads)[-1]

    @property
    def done(self) -> Task:
        """The task after which its output is (also) in DRAM."""
        return (self.stores or self.computes or self.loads)[-1]

    @property
    def tasks(self) -> list[Task]:
        return [*self.loads, *self.computes, *self.stores]


def tile_count(work: OpWork, tile_bytes: float, max_tiles: int) -> int:
    moved = max(sum(work.reads.values()), sum(work.writes.values()))
    return int(min(max_tiles, max(1, math.ceil(moved / tile_bytes))))


def schedule(graph: Graph, works: list[OpWork], chip: Chip, *, overlap: bool = True,
             max_tiles: int = 64) -> tuple[float, dict[str, float], list[_Scheduled]]:
    """Run the tasks; (makespan cycles, busy cycles per unit, per-Einsum task groups)."""
    bw = chip.dram_bytes_per_cycle
    # a tile is a quarter of the activation buffer: two halves double-buffer, each shared by the
    # operands coming in and the results going out
    tile_bytes = max(1.0, chip.activation_buffer_bytes / 4)
    by_output: dict[str, _Scheduled] = {}
    groups: list[_Scheduled] = []
    dma_queue: list[Task] = []
    compute_queue: list[Task] = []
    deferred: list[Task] = []  # stores of the previous Einsum, queued after this one's first loads
    chain: list[Task] = []  # overlap=False: every task after the previous one

    def make(name: str, unit: str, cycles: float, deps: list[Task]) -> Task:
        if not overlap and chain:
            deps = [*deps, chain[-1]]
        t = Task(name, unit, cycles, deps=deps)
        chain.append(t)
        return t

    for work in works:
        e: Einsum = work.einsum
        g = _Scheduled(work)
        producers = [by_output[o.tensor.name] for o in e.inputs if o.tensor.name in by_output]
        spilled = [p for p in producers if _reads_spilled(p, work)]
        needs_store = [p.done for p in spilled]
        on_chip = [p.last for p in producers if p not in spilled]
        n = tile_count(work, tile_bytes, max_tiles)
        read, written = sum(work.reads.values()), sum(work.writes.values())
        # stores this Einsum reads back from DRAM must be queued before its loads
        for t in list(deferred):
            if any(t in p.stores for p in spilled):
                dma_queue.append(t)
                deferred.remove(t)
        if work.unit == "dma":  # a copy: data movement only
            if read:
                g.loads.append(make(f"{e.name}.load", "dma", read / bw, [*needs_store, *on_chip]))
            deps = g.loads[-1:] or [*needs_store, *on_chip]
            g.stores.append(make(f"{e.name}.store", "dma", written / bw, deps))
            dma_queue.extend([*deferred, *g.loads, *g.stores])
            deferred = []
        else:
            unit = work.unit
            for i in range(n):
                load_deps = list(needs_store)
                if i >= 2:
                    load_deps.append(g.computes[i - 2])
                if read:
                    g.loads.append(make(f"{e.name}.load{i}", "dma", read / n / bw, load_deps))
                comp_deps = g.loads[-1:] if read else list(load_deps)
                if i == 0:
                    comp_deps = [*comp_deps, *on_chip]
                g.computes.append(make(f"{e.name}.{unit}{i}", unit, work.unit_cycles / n, comp_deps))
                if written:
                    g.stores.append(make(f"{e.name}.store{i}", "dma", written / n / bw, [g.computes[-1]]))
            head, rest = g.loads[:2], g.loads[2:]
            dma_queue.extend([*head, *deferred, *rest])
            deferred = list(g.stores)
            compute_queue.extend(g.computes)
        groups.append(g)
        by_output[e.output.tensor.name] = g
    dma_queue.extend(deferred)
    ordered = [*dma_queue, *compute_queue] if overlap else chain
    timeline = run(ordered, UNITS)
    return timeline.makespan_cycles, timeline.busy_cycles, groups


def _reads_spilled(producer: _Scheduled, consumer: OpWork) -> bool:
    """Whether ``consumer`` reads ``producer``'s output back from DRAM (it was spilled)."""
    return producer.work.einsum.output.tensor.name in consumer.reads
