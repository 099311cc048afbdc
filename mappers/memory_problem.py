"""The scratchpad-memory view of a Graph: which tensors live on chip, their sizes, who makes and reads them.

Why a separate, index-based view: the COSMA ILP, the baselines, the brute-force checker and the
budget computations all reason about the same small facts (operator inputs/outputs in scope,
tensor sizes, producers and consumers), and integers make the hot loops cheap.

Scope and the meaning of *compulsory* traffic (decided here, used everywhere):

- An **on-chip tensor** is every tensor an operator reads or writes, except that in
  activations-only mode (``with_weights=False``) tensors of role ``weight`` and ``kv_cache``
  are *out of scope*: they are streamed from DRAM through their own path, take no scratchpad
  space and are not counted at all (neither compulsory nor non-compulsory). With
  ``with_weights=True`` they are ordinary on-chip tensors that start in DRAM.
- A **source** is an in-scope tensor with no producer (a graph input; a weight with weights in
  scope). It starts in DRAM, so its *first* load is compulsory; every later load is a
  non-compulsory reload. Evicting a source writes nothing (DRAM already holds it).
- A **graph output** is produced and never read; its one write to DRAM is compulsory and it
  occupies the scratchpad only during the step that creates it.
- Everything else (an **intermediate**) is born on chip. Moving it off chip costs its size once
  (the spill: DRAM keeps that copy, tensors are immutable, so one spill per tensor suffices) and
  each reload costs its size again.

Non-compulsory bytes = sum of spill bytes + sum of reload bytes (sources' loads after the first).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from accelsim.errors import AccelsimError
from accelsim.ir import Graph, TensorRole

# Roles left out of the scratchpad in activations-only mode (read-only parameters).
PARAMETER_ROLES = frozenset({TensorRole.WEIGHT, TensorRole.KV_CACHE})


@dataclass(frozen=True)
class MemoryProblem:
    """Operators and on-chip tensors as integers; operator ``i`` is the ``i``-th of the default order."""

    graph_name: str
    op_names: tuple[str, ...]
    op_inputs: tuple[tuple[int, ...], ...]
    op_outputs: tuple[tuple[int, ...], ...]
    tensor_names: tuple[str, ...]
    tensor_bytes: tuple[int, ...]
    with_weights: bool = False

    def __post_init__(self) -> None:
        for name, size in zip(self.tensor_names, self.tensor_bytes):
            if size <= 0:
                raise AccelsimError(f"tensor {name!r} has size {size} bytes; every tensor must be at least 1 byte",
                                    field=f"graph {self.graph_name}")
        producers: dict[int, int] = {}
        for op, outs in enumerate(self.op_outputs):
            for t in outs:
                if t in producers:
                    raise AccelsimError(f"tensor {self.tensor_names[t]!r} has two producers",
                                        field=f"graph {self.graph_name}")
                producers[t] = op
        for op, ins in enumerate(self.op_inputs):
            for t in ins:
                p = producers.get(t)
                if p is not None and p >= op:
                    raise AccelsimError(f"operator {self.op_names[op]!r} reads {self.tensor_names[t]!r} before "
                                        "its producer in the default order (the order must be topological)",
                                        field=f"graph {self.graph_name}")

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_graph(cls, graph: Graph, with_weights: bool = False) -> "MemoryProblem":
        """Build the view; the default order is the graph's own (stable topological) order."""
        order = graph.topological_order()
        names: list[str] = []
        index: dict[str, int] = {}

        def tid(tensor) -> int | None:
            if tensor.role in PARAMETER_ROLES and not with_weights:
                return None
            if tensor.name not in index:
                index[tensor.name] = len(names)
                names.append(tensor.name)
            return index[tensor.name]

        ins, outs = [], []
        for e in order:
            ins.append(tuple(dict.fromkeys(t for t in (tid(o.tensor) for o in e.inputs) if t is not None)))
            out = tid(e.output.tensor)
            outs.append(() if out is None else (out,))
        sizes = [graph.tensors[n].bytes for n in names]
        return cls(graph.name, tuple(e.name for e in order), tuple(ins), tuple(outs), tuple(names), tuple(sizes),
                   with_weights)

    @classmethod
    def from_lists(cls, name: str, ops: list[tuple[list[int], list[int]]], sizes: list[int]) -> "MemoryProblem":
        """A problem straight from ``[(inputs, outputs), ...]`` and tensor sizes (tests, examples)."""
        return cls(name, tuple(f"op{i}" for i in range(len(ops))), tuple(tuple(i) for i, _ in ops),
                   tuple(tuple(o) for _, o in ops), tuple(f"t{i}" for i in range(len(sizes))),
                   tuple(int(s) for s in sizes))

    # --- structure --------------------------------------------------------------------------
    @property
    def n_ops(self) -> int:
        return len(self.op_names)

    @property
    def n_tensors(self) -> int:
        return len(self.tensor_names)

    @cached_property
    def producer(self) -> tuple[int | None, ...]:
        prod: list[int | None] = [None] * self.n_tensors
        for op, outs in enumerate(self.op_outputs):
            for t in outs:
                prod[t] = op
        return tuple(prod)

    @cached_property
    def consumers(self) -> tuple[tuple[int, ...], ...]:
        cons: list[list[int]] = [[] for _ in range(self.n_tensors)]
        for op, ins in enumerate(self.op_inputs):
            for t in ins:
                cons[t].append(op)
        return tuple(tuple(c) for c in cons)

    def is_source(self, t: int) -> bool:
        return self.producer[t] is None

    def is_graph_output(self, t: int) -> bool:
        return self.producer[t] is not None and not self.consumers[t]

    @cached_property
    def preds(self) -> tuple[frozenset[int], ...]:
        """Operators each operator directly depends on."""
        return tuple(frozenset(self.producer[t] for t in ins if self.producer[t] is not None)
                     for ins in self.op_inputs)

    @cached_property
    def succs(self) -> tuple[frozenset[int], ...]:
        s: list[set[int]] = [set() for _ in range(self.n_ops)]
        for op, ps in enumerate(self.preds):
            for p in ps:
                s[p].add(op)
        return tuple(frozenset(x) for x in s)

    @cached_property
    def ancestors(self) -> tuple[frozenset[int], ...]:
        """Strict ancestors of each operator (default order is topological, so one pass suffices)."""
        anc: list[frozenset[int]] = []
        for op in range(self.n_ops):
            acc: set[int] = set()
            for p in self.preds[op]:
                acc.add(p)
                acc |= anc[p]
            anc.append(frozenset(acc))
        return tuple(anc)

    @cached_property
    def descendants(self) -> tuple[frozenset[int], ...]:
        desc: list[set[int]] = [set() for _ in range(self.n_ops)]
        for op in range(self.n_ops):
            for a in self.ancestors[op]:
                desc[a].add(op)
        return tuple(frozenset(d) for d in desc)

    def working_set_bytes(self, op: int) -> int:
        """Bytes an operator needs on chip while it runs: its in-scope inputs plus outputs."""
        return sum(self.tensor_bytes[t] for t in (*self.op_inputs[op], *self.op_outputs[op]))

    @cached_property
    def m_r(self) -> int:
        """M_R: the largest single-operator working set; no smaller scratchpad can run the graph."""
        return max((self.working_set_bytes(op) for op in range(self.n_ops)), default=0)

    @cached_property
    def compulsory_bytes(self) -> int:
        """First loads of sources plus the writes of graph outputs."""
        return sum(s for t, s in enumerate(self.tensor_bytes) if self.is_source(t) and self.consumers[t]) + \
            sum(s for t, s in enumerate(self.tensor_bytes) if self.is_graph_output(t))

    @cached_property
    def granule_bytes(self) -> int:
        """GCD of all sizes: addresses can be taken as its multiples without loss (shift each down)."""
        return math.gcd(*self.tensor_bytes) if self.tensor_bytes else 1

    def check_order(self, order: list[int] | tuple[int, ...]) -> None:
        """Raise unless ``order`` runs every operator once with producers first."""
        if sorted(order) != list(range(self.n_ops)):
            raise AccelsimError("a schedule must list every operator exactly once", field="schedule")
        pos = {op: i for i, op in enumerate(order)}
        for op in range(self.n_ops):
            for p in self.preds[op]:
                if pos[p] > pos[op]:
                    raise AccelsimError(f"{self.op_names[op]!r} is scheduled before its producer "
                                        f"{self.op_names[p]!r}", field="schedule")

    def require_capacity(self, capacity_bytes: int) -> None:
        """Raise InfeasibleError when a single operator cannot fit (the M_R bound)."""
        from accelsim.errors import InfeasibleError

        if not isinstance(capacity_bytes, int) or capacity_bytes <= 0:
            raise AccelsimError(f"scratchpad capacity must be a positive whole number of bytes, got {capacity_bytes!r}",
                                field="scratchpad", allowed="> 0 bytes")
        used = [t for t in range(self.n_tensors) if self.consumers[t] or self.producer[t] is not None]
        too_big = [t for t in used if self.tensor_bytes[t] > capacity_bytes]
        if too_big:
            t = max(too_big, key=lambda u: self.tensor_bytes[u])
            raise InfeasibleError(f"tensor {self.tensor_names[t]!r} has {self.tensor_bytes[t]} bytes, more than the "
                                  f"scratchpad's {capacity_bytes} bytes; use at least {self.m_r}", field="scratchpad")
        if capacity_bytes < self.m_r:
            worst = max(range(self.n_ops), key=self.working_set_bytes)
            raise InfeasibleError(
                f"scratchpad of {capacity_bytes} bytes is too small: operator {self.op_names[worst]!r} needs "
                f"{self.m_r} bytes for its inputs and outputs at once (M_R); use at least {self.m_r}",
                field="scratchpad")

    def live_intervals(self, order: list[int] | tuple[int, ...]) -> list[tuple[int, int] | None]:
        """Per tensor, the steps [first, last] it must be on chip with no spills under ``order``.

        Intermediates and outputs live from creation to last use; sources from first to last use.
        Tensors nobody touches (an unused source) get None.
        """
        pos = {op: i for i, op in enumerate(order)}
        out: list[tuple[int, int] | None] = []
        for t in range(self.n_tensors):
            uses = [pos[c] for c in self.consumers[t]]
            p = self.producer[t]
            if p is not None:
                out.append((pos[p], max(uses, default=pos[p])))
            elif uses:
                out.append((min(uses), max(uses)))
            else:
                out.append(None)
        return out

    def peak_bytes(self, order: list[int] | tuple[int, ...]) -> int:
        """Largest sum of live tensor sizes over the steps of ``order`` with nothing spilled."""
        load = [0] * self.n_ops
        for t, iv in enumerate(self.live_intervals(order)):
            if iv is None:
                continue
            for s in range(iv[0], iv[1] + 1):
                load[s] += self.tensor_bytes[t]
        return max(load, default=0)


def greedy_min_peak_order(problem: MemoryProblem) -> list[int]:
    """A fast heuristic order: repeatedly run the ready operator that frees the most live bytes.

    Used as the warm start of ``min_peak_schedule`` and where the exact model is too large.
    """
    pb, n = problem, problem.n_ops
    remaining_uses = [len(c) for c in pb.consumers]
    waiting = [len(p) for p in pb.preds]
    ready = [o for o in range(n) if waiting[o] == 0]
    order: list[int] = []
    while ready:
        def delta(o: int) -> tuple[int, int]:
            freed = sum(pb.tensor_bytes[t] for t in pb.op_inputs[o] if remaining_uses[t] == 1)
            born = sum(pb.tensor_bytes[t] for t in pb.op_outputs[o] if pb.consumers[t])
            return (born - freed, o)
        o = min(ready, key=delta)
        ready.remove(o)
        order.append(o)
        for t in pb.op_inputs[o]:
            remaining_uses[t] -= 1
        for s in pb.succs[o]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return order
