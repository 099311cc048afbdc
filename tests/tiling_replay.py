"""Slow reference for the loop-nest engine: play a LoopNest point by point and count accesses
element by element.

Nothing here uses the reuse formula. At every time step (one iteration of all temporal loops)
each instance of each level must hold the set of elements its subtree touches while the loops
above it keep their current indices; that set is computed by enumerating the points. When it
changes, the elements that enter are fetched from the parent (one read per element per parent
instance per step however many children want it: multicast) and, for the output, the elements
that leave are written to the parent (one write per element per parent per step: the children's
partial sums are reduced on the way). An output element that enters a level where it has been
before comes back from the parent (a read-back of a partial sum). The MACs are a level below
the innermost one holding one point. At the end every output still held is written up.

A convolution's input (``TensorAccess.windows``) has an element per distinct input coordinate
``p * stride + r * dilation``. With ``halo=False`` (the engine's model) a level holding a window
tile fetches the whole tile again whenever a loop above it that indexes the input advances; with
``halo=True`` it fetches only the elements it does not hold (a buffer that keeps the overlap of
consecutive windows), a lower count the engine's must never be below.
"""
from __future__ import annotations

import itertools
import math
from functools import cache

from accelsim.tiling import Hierarchy, LoopNest, LoopProblem


def coordinates(t, c: dict[str, int]) -> tuple[int, ...] | None:
    """The element of ``t`` that iteration point ``c`` touches (None: a padding zero, no element)."""
    inside = {w.out_rank for w in t.windows} | {w.filter_rank for w in t.windows}
    plain = tuple(c[r] for r in sorted(t.ranks) if r not in inside)
    rows = tuple(c[w.out_rank] * w.stride + c[w.filter_rank] * w.dilation - w.pad for w in t.windows)
    if any(x < 0 or (w.size is not None and x >= w.size) for x, w in zip(rows, t.windows)):
        return None
    return plain + rows


def replay(nest: LoopNest, problem: LoopProblem, hierarchy: Hierarchy, halo: bool = False):
    levels = hierarchy.levels
    loops = nest.inner_first()
    depth = len(levels)
    ranks = list(problem.extents)
    # Slots outermost first: each level's temporal loops, then its spatial loops (innermost).
    slots: list[tuple[int, str, str, int]] = []  # (level, "t"/"s", rank, factor)
    for j in range(depth - 1, -1, -1):
        lv = loops[j]
        slots += [(j, "t", r, f) for r, f in lv.temporal]
        for fo in levels[j].fanouts:
            slots += [(j, "s", r, f) for r, f in lv.spatial.get(fo.name, {}).items()]
    stride = []
    for i, (_, _, r, _) in enumerate(slots):
        stride.append(math.prod(f for (_, _, r2, f) in slots[i + 1:] if r2 == r))
    t_slots = [i for i, s in enumerate(slots) if s[1] == "t"]
    s_slots = [i for i, s in enumerate(slots) if s[1] == "s"]

    def point(values: dict[int, int]) -> dict[str, int]:
        coord = {r: 0 for r in ranks}
        for i, v in values.items():
            coord[slots[i][2]] += v * stride[i]
        return coord

    @cache
    def required(child: int, inst: tuple[int, ...], key: tuple[int, ...], tname: str) -> frozenset:
        """Elements of ``tname`` touched under instance ``inst`` of level ``child`` (-1: a MAC)."""
        t = next(x for x in problem.tensors if x.name == tname)
        fixed = dict(zip([i for i in s_slots if slots[i][0] > child], inst))
        fixed.update(zip([i for i in t_slots if slots[i][0] > child], key))
        free = [i for i in range(len(slots)) if i not in fixed]
        out = set()
        for combo in itertools.product(*(range(slots[i][3]) for i in free)):
            c = point({**fixed, **dict(zip(free, combo))})
            e = coordinates(t, c)
            if e is not None:
                out.add(e)
        return frozenset(out)

    names = [lv.name for lv in levels]
    reads = {n: {t.name: 0 for t in problem.tensors} for n in names}
    writes = {n: {t.name: 0 for t in problem.tensors} for n in names}
    mac_reads = {t.name: 0 for t in problem.tensors if not t.is_output}
    held: dict[tuple[int, tuple[int, ...], str], frozenset] = {}
    visited: dict[int, set] = {c: set() for c in range(-1, depth - 1)}

    def instances(child: int):
        idx = [i for i in s_slots if slots[i][0] > child]
        return idx, list(itertools.product(*(range(slots[i][3]) for i in idx)))

    inst_of = {c: instances(c) for c in range(-1, depth - 1)}

    def parent_inst(child: int, inst: tuple[int, ...]) -> tuple[int, ...]:
        idx = inst_of[child][0]
        return tuple(v for i, v in zip(idx, inst) if slots[i][0] > child + 1)

    def moved(child: int, key: tuple[int, ...], t) -> tuple[int, ...]:
        """Indices of the temporal loops above ``child`` that index ``t``: its tile's identity."""
        return tuple(v for k, v in zip(t_idx_by_level[child], key) if slots[t_slots[k]][2] in t.ranks)

    last_key: dict[tuple[int, tuple[int, ...], str], tuple[int, ...]] = {}

    def step(child: int, required_of, key=None) -> None:
        parent = names[child + 1]
        for t in problem.tensors:
            b = t.dtype_bytes
            enter_by_parent: dict[tuple[int, ...], set] = {}
            leave_by_parent: dict[tuple[int, ...], set] = {}
            for inst in inst_of[child][1]:
                now = required_of(inst, t.name)
                if now is None:
                    continue
                old = held.get((child, inst, t.name), frozenset())
                enter, leave = now - old, old - now
                if t.windows and not halo and key is not None:
                    ident = moved(child, key, t)
                    if last_key.get((child, inst, t.name)) != ident:
                        enter = now  # the whole window tile again, overlap or not
                    last_key[(child, inst, t.name)] = ident
                p = parent_inst(child, inst)
                if t.is_output:
                    if leave:
                        leave_by_parent.setdefault(p, set()).update(leave)
                        if child >= 0:
                            reads[names[child]][t.name] += len(leave) * b
                    back = {e for e in enter if e in visited[child]}
                    enter_by_parent.setdefault(p, set()).update(back)
                else:
                    enter_by_parent.setdefault(p, set()).update(enter)
                    if child >= 0:
                        writes[names[child]][t.name] += len(enter) * b
                    else:
                        mac_reads[t.name] += len(enter)
                held[(child, inst, t.name)] = now
            for p, elems in enter_by_parent.items():
                reads[parent][t.name] += len(elems) * b
                if t.is_output and child >= 0:
                    writes[names[child]][t.name] += len(elems) * b
            for p, elems in leave_by_parent.items():
                writes[parent][t.name] += len(elems) * b
            if t.is_output:
                for inst in inst_of[child][1]:
                    visited[child].update(held.get((child, inst, t.name), frozenset()))

    t_idx_by_level = {c: [k for k, i in enumerate(t_slots) if slots[i][0] > c] for c in range(-1, depth - 1)}
    for time in itertools.product(*(range(slots[i][3]) for i in t_slots)):
        for child in range(depth - 2, -2, -1):
            key = tuple(time[k] for k in t_idx_by_level[child])
            step(child, lambda inst, tname, c=child, key=key: required(c, inst, key, tname), key)
    for child in range(-1, depth - 1):  # flush the outputs upwards
        step(child, lambda inst, tname: frozenset() if tname == problem.output.name else None)
    return reads, writes, mac_reads
