"""A scratchpad plan in problem indices, and its conversion to the project's Mapping.

Every scratchpad mapper here (the COSMA ILP, the baselines, divide and conquer) produces a
``Plan``; turning it into a ``Mapping`` happens once, in ``to_mapping``, so the simulator scores
all of them through the same data.

Event kinds (``TransferEvent.kind``), all at the step whose operator needs the effect:
``load`` compulsory first load of a source; ``reload`` any later load (non-compulsory);
``spill`` first write of an intermediate to DRAM, done between step-1 and step (non-compulsory);
``store`` compulsory write of a graph output at the step that creates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from accelsim.mapping import Mapping, Placement, TransferEvent
from mappers.memory_problem import MemoryProblem

NON_COMPULSORY_KINDS = ("spill", "reload")


@dataclass
class Plan:
    """Order of operators (ids), residency segments ``(tensor, offset_bytes, start, end)`` and events."""

    order: list[int]
    placements: list[tuple[int, int, int, int]] = field(default_factory=list)
    events: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, tensor, step)

    def non_compulsory_bytes(self, problem: MemoryProblem) -> int:
        return sum(problem.tensor_bytes[t] for kind, t, _ in self.events if kind in NON_COMPULSORY_KINDS)

    def residency(self, problem: MemoryProblem) -> list[dict[int, int]]:
        """Per step, tensor -> offset of everything on chip."""
        steps: list[dict[int, int]] = [dict() for _ in range(problem.n_ops)]
        for t, off, s, e in self.placements:
            for step in range(s, e + 1):
                steps[step][t] = off
        return steps


def plan_from_residency(problem: MemoryProblem, order: list[int], resident: list[dict[int, int]],
                        spills: list[tuple[int, int]]) -> Plan:
    """Build placements and events from per-step ``{tensor: offset}`` and ``(tensor, step)`` spills.

    A residency segment runs while a tensor stays at one offset on consecutive steps; a new
    segment that does not start at the tensor's creation is a load (first for a source) or reload.
    """
    created_at = {problem.producer[t]: None for t in range(problem.n_tensors)}
    pos = {op: s for s, op in enumerate(order)}
    placements: list[tuple[int, int, int, int]] = []
    events: list[tuple[str, int, int]] = [("spill", t, s) for t, s in spills]
    loaded: set[int] = set()
    open_seg: dict[int, tuple[int, int]] = {}  # tensor -> (offset, start)
    del created_at
    for step in range(len(order) + 1):
        here = resident[step] if step < len(order) else {}
        for t, (off, start) in list(open_seg.items()):
            if here.get(t) != off or step == len(order):
                placements.append((t, off, start, step - 1))
                del open_seg[t]
        for t, off in here.items():
            if t in open_seg:
                continue
            open_seg[t] = (off, step)
            p = problem.producer[t]
            if p is not None and pos[p] == step:
                if problem.is_graph_output(t):
                    events.append(("store", t, step))
                continue
            if problem.is_source(t) and t not in loaded:
                events.append(("load", t, step))
                loaded.add(t)
            else:
                events.append(("reload", t, step))
    placements.sort(key=lambda p: (p[2], p[0]))
    events.sort(key=lambda e: (e[2], e[0] != "spill", e[1]))
    return Plan(list(order), placements, events)


def to_mapping(problem: MemoryProblem, plan: Plan, capacity_bytes: int, meta: dict | None = None) -> Mapping:
    names, sizes = problem.tensor_names, problem.tensor_bytes
    return Mapping(
        graph=problem.graph_name,
        schedule=[problem.op_names[o] for o in plan.order],
        allocation=[Placement(names[t], off, s, e) for t, off, s, e in plan.placements],
        events=[TransferEvent(kind, names[t], step, sizes[t]) for kind, t, step in plan.events],
        meta={"scratchpad_bytes": int(capacity_bytes), "with_weights": problem.with_weights,
              "non_compulsory_bytes": plan.non_compulsory_bytes(problem), **(meta or {})},
    )
