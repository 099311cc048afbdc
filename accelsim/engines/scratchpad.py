"""Replay a scratchpad Mapping step by step: check it, count its off-chip bytes, time it.

Why a separate replay: the ILP's objective is a claim about a mapping; this module re-derives
the traffic from the mapping alone (schedule, placements, transfer events) with its own reading
of the graph, so a wrong model or a wrong decoder shows up as a mismatch or a violation instead
of a silently optimistic number. It never imports a mapper.

Rules checked (step ``s`` runs the ``s``-th einsum of the schedule):

- every placement lies inside ``[0, capacity)``; two placements active at one step never share
  a byte; a tensor has at most one placement per step;
- every on-chip input of the step's einsum is resident at that step, and its output is resident
  from that step (a placement starting there);
- a placement may start only where its tensor appears: the creating step of its producer, or a
  ``load``/``reload`` event at that step; a reload of an intermediate needs an earlier ``spill``,
  and a spill needs the tensor resident at the step before;
- a source's first arrival is a ``load`` and later arrivals are ``reload``s; a graph output is
  ``store``d at its creating step.

Scope: in activations-only mode weights and KV caches take no scratchpad space and are ignored;
with weights they are sources like graph inputs. Counting: ``spill`` and ``reload`` bytes are
non-compulsory; ``load`` and ``store`` bytes are compulsory.

Cycles (``hardware`` given): each step's operator on the whole-model engine's units and the
plan's transfers on one DMA queue, composed on the event engine (``_add_cycles`` says which
transfers may overlap which operators); ``total_cycles`` is the makespan, between the larger of
the compute and DMA sums and their total.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from accelsim.errors import AccelsimError
from accelsim.ir import Graph, TensorRole
from accelsim.mapping import Mapping

_OUT_OF_SCOPE_WITHOUT_WEIGHTS = frozenset({TensorRole.WEIGHT, TensorRole.KV_CACHE})


class MappingViolation(AccelsimError):
    """The mapping breaks a scratchpad rule."""


@dataclass
class ReplayResult:
    non_compulsory_bytes: int
    compulsory_bytes: int
    spill_bytes: int
    reload_bytes: int
    peak_bytes: int  # highest address in use (top of the arena) at any step
    per_step: list[dict] = field(default_factory=list)
    total_cycles: float | None = None
    compute_cycles: float | None = None
    dma_cycles: float | None = None


def replay(graph: Graph, mapping: Mapping, capacity_bytes: int, with_weights: bool = False,
           hardware=None) -> ReplayResult:
    """Check ``mapping`` against every rule above and count its traffic (and cycles on ``hardware``)."""
    mapping.validate(graph)
    in_scope = {n for n, t in graph.tensors.items() if with_weights or t.role not in _OUT_OF_SCOPE_WITHOUT_WEIGHTS}
    size = {n: graph.tensors[n].bytes for n in in_scope}
    step_of = {name: s for s, name in enumerate(mapping.schedule)}
    n_steps = len(mapping.schedule)

    def fail(msg: str) -> None:
        raise MappingViolation(msg, field="mapping")

    # placements per step, bounds
    active: list[list] = [[] for _ in range(n_steps)]
    starts: dict[tuple[str, int], object] = {}
    for p in mapping.allocation:
        if p.tensor not in in_scope:
            fail(f"placement of {p.tensor!r}, which is not an on-chip tensor here")
        if not (0 <= p.start <= p.end < n_steps):
            fail(f"placement of {p.tensor!r} spans steps {p.start}..{p.end} outside 0..{n_steps - 1}")
        if p.offset_bytes < 0 or p.offset_bytes + size[p.tensor] > capacity_bytes:
            fail(f"{p.tensor!r} at offset {p.offset_bytes} with {size[p.tensor]} bytes exceeds the "
                 f"{capacity_bytes}-byte scratchpad")
        starts[(p.tensor, p.start)] = p
        for s in range(p.start, p.end + 1):
            active[s].append(p)
    peak = 0
    for s, ps in enumerate(active):
        names = [p.tensor for p in ps]
        if len(names) != len(set(names)):
            fail(f"step {s}: a tensor has two placements at once")
        spans = sorted((p.offset_bytes, p.offset_bytes + size[p.tensor], p.tensor) for p in ps)
        for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
            if b0 < a1:
                fail(f"step {s}: {an!r} [{a0}, {a1}) overlaps {bn!r} [{b0}, {b1})")
        peak = max(peak, max((e for _, e, _ in spans), default=0))

    events_at: dict[tuple[str, int], list[str]] = defaultdict(list)
    for ev in mapping.events:
        if ev.tensor not in in_scope:
            fail(f"event {ev.kind} of {ev.tensor!r}, which is not an on-chip tensor here")
        if ev.bytes != size[ev.tensor]:
            fail(f"event {ev.kind} of {ev.tensor!r} moves {ev.bytes} bytes, the tensor has {size[ev.tensor]}")
        if ev.kind not in ("load", "reload", "spill", "store"):
            fail(f"unknown event kind {ev.kind!r} (allowed: load, reload, spill, store)")
        events_at[(ev.tensor, ev.step)].append(ev.kind)

    resident = [{p.tensor for p in ps} for ps in active]
    produced_at = {e.output.tensor.name: step_of[e.name] for e in graph.einsums}
    consumed = {n for e in graph.einsums for o in e.inputs for n in [o.tensor.name]}

    # arrivals must be explained; the DRAM copy must exist for reloads
    in_dram_from: dict[str, int] = {n: -1 for n in in_scope if n not in produced_at}
    spill_step: dict[str, int] = {}
    loaded: set[str] = set()
    for ev in sorted(mapping.events, key=lambda e: (e.step, e.kind != "spill")):
        if ev.kind == "spill":
            if ev.tensor in spill_step:
                fail(f"{ev.tensor!r} is spilled twice (DRAM already holds it)")
            if ev.tensor not in produced_at:
                fail(f"{ev.tensor!r} is a source; DRAM already holds it, a spill is never needed")
            if ev.step < 1 or ev.tensor not in resident[ev.step - 1]:
                fail(f"spill of {ev.tensor!r} at step {ev.step}, but it is not on chip at step {ev.step - 1}")
            spill_step[ev.tensor] = ev.step
            in_dram_from[ev.tensor] = ev.step
    for (tensor, step), kinds in events_at.items():
        arrivals = [k for k in kinds if k in ("load", "reload")]
        if len(arrivals) > 1:
            fail(f"{tensor!r} arrives twice at step {step}")
    for p in sorted(mapping.allocation, key=lambda p: p.start):
        kinds = events_at.get((p.tensor, p.start), [])
        arrival = [k for k in kinds if k in ("load", "reload")]
        if produced_at.get(p.tensor) == p.start:
            if arrival:
                fail(f"{p.tensor!r} is both created and loaded at step {p.start}")
            continue
        if p.start > 0 and p.tensor in resident[p.start - 1] and not arrival:
            # a continuation of the same tensor at a new offset without a reload is a silent move
            fail(f"{p.tensor!r} moves to offset {p.offset_bytes} at step {p.start} without a reload")
        if not arrival:
            fail(f"{p.tensor!r} appears on chip at step {p.start} with no creation, load or reload")
        if p.tensor in produced_at and p.start <= produced_at[p.tensor]:
            fail(f"{p.tensor!r} is on chip at step {p.start}, before it is created")
        if p.tensor not in in_dram_from or in_dram_from[p.tensor] > p.start:
            fail(f"{p.tensor!r} is reloaded at step {p.start} but DRAM holds no copy yet (no earlier spill)")
        first = p.tensor not in produced_at and p.tensor not in loaded
        want = "load" if first else "reload"
        if arrival[0] != want:
            fail(f"{p.tensor!r} arrives at step {p.start} as {arrival[0]!r}; it should be {want!r}")
        loaded.add(p.tensor)
    for (tensor, step), kinds in events_at.items():
        for k in kinds:
            if k in ("load", "reload") and (tensor, step) not in starts:
                fail(f"{k} of {tensor!r} at step {step} puts it nowhere (no placement starts there)")
            if k == "store" and (produced_at.get(tensor) != step or tensor in consumed):
                fail(f"store of {tensor!r} at step {step}: only a graph output is stored, at its creation")

    # every operator finds its operands
    per_step = []
    for s, name in enumerate(mapping.schedule):
        e = graph.einsum(name)
        for o in e.inputs:
            n = o.tensor.name
            if n in in_scope and n not in resident[s]:
                fail(f"step {s} ({name}): input {n!r} is not on chip")
        out = e.output.tensor.name
        if out in in_scope and (out, s) not in starts:
            fail(f"step {s} ({name}): output {out!r} has no placement starting at its creation")
        moved = sum(size[ev.tensor] for ev in mapping.events if ev.step == s)
        per_step.append({"step": s, "einsum": name, "resident_bytes": sum(size[t] for t in resident[s]),
                         "transfer_bytes": moved})
    outputs = {n for n in produced_at if n not in consumed and n in in_scope}
    for n in outputs:
        if "store" not in events_at.get((n, produced_at[n]), []):
            fail(f"graph output {n!r} is never stored")

    spill_b = sum(ev.bytes for ev in mapping.events if ev.kind == "spill")
    reload_b = sum(ev.bytes for ev in mapping.events if ev.kind == "reload")
    comp_b = sum(ev.bytes for ev in mapping.events if ev.kind in ("load", "store"))
    result = ReplayResult(spill_b + reload_b, comp_b, spill_b, reload_b, peak, per_step)
    if hardware is not None:
        _add_cycles(result, graph, mapping, hardware)
    return result


def _add_cycles(result: ReplayResult, graph: Graph, mapping: Mapping, hardware) -> None:
    """Cycles of the plan on ``hardware`` with the whole-model engine's units and composition.

    Each step's operator costs what ``accelsim.engines.accelerator.lowering`` says on its unit
    (GEMMs through the systolic model, vector ops on the vector unit, an on-chip copy one
    element per lane per cycle); the plan's transfers run on one DMA queue at the DRAM
    bandwidth, as tasks on the event engine: a step's spills may run while the previous
    operator computes (they only read), its loads and reloads wait for the previous operator
    (their space may hold data it still uses), and a store runs after its producer, overlapping
    the next operator. ``total_cycles`` is the makespan; the compute and DMA sums are kept.
    """
    from collections import defaultdict

    from accelsim.engines.accelerator.chips import chip_for
    from accelsim.engines.accelerator.lowering import Placement, lower, problems
    from accelsim.engines.events import Task, run

    chip = chip_for(hardware)
    found = problems(graph, chip)
    if found:
        raise found[0].error()
    place = Placement(graph, chip)
    bpc = chip.dram_bytes_per_cycle
    events = defaultdict(list)
    for ev in mapping.events:
        events[ev.step].append(ev)
    tasks: list[Task] = []
    prev: Task | None = None
    pending_stores: list[Task] = []
    producers: dict[str, Task] = {}
    for step, row in enumerate(result.per_step):
        work = lower(graph.einsum(row["einsum"]), chip, place)
        unit, cycles = work.unit, work.unit_cycles
        if unit == "dma":  # a copy between on-chip buffers: one element per lane per cycle
            cycles = chip.vector_cycles("add", work.einsum.output.tensor.elements)
            if cycles is None:
                raise AccelsimError(f"an on-chip copy needs a vector unit; {hardware.name} has none",
                                    field=f"einsum {work.einsum.name}", allowed="a preset with a vector unit")
            unit = "vector"
        # a spill reads its tensor, so it waits for the operator that produced it
        spills = [Task(f"{step}.spill.{ev.tensor}", "dma", ev.bytes / bpc,
                       deps=[producers[ev.tensor]] if ev.tensor in producers else [])
                  for ev in events[step] if ev.kind == "spill"]
        loads = [Task(f"{step}.{ev.kind}.{ev.tensor}", "dma", ev.bytes / bpc, deps=[*spills, *([prev] if prev else [])])
                 for ev in events[step] if ev.kind in ("load", "reload")]
        compute = Task(f"{step}.{work.einsum.name}", unit, cycles, deps=[*loads, *([prev] if prev else [])])
        stores = [Task(f"{step}.store.{ev.tensor}", "dma", ev.bytes / bpc, deps=[compute])
                  for ev in events[step] if ev.kind == "store"]
        tasks += [*spills, *loads, *pending_stores, compute]
        pending_stores = stores
        row["compute_cycles"] = cycles
        row["dma_cycles"] = sum(t.cycles for t in (*spills, *loads, *stores))
        prev = compute
        producers[work.einsum.output.tensor.name] = compute
    tasks += pending_stores
    timeline = run(tasks, ("matrix", "vector", "dma", "link"))
    result.compute_cycles = sum(r["compute_cycles"] for r in result.per_step)
    result.dma_cycles = sum(r["dma_cycles"] for r in result.per_step)
    result.total_cycles = timeline.makespan_cycles
