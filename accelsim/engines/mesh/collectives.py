"""Reduce, allreduce and broadcast schedules on a line of P cores, as streams for ``netsim``.

Why schedules as data: the same list of streams is timed hop by hop (``simulate_streams``) and
executed on numpy vectors (``functional.run_vector_streams``), so a schedule that is fast but
computes the wrong sum cannot pass the tests.

Each stream's ``tag`` is ``(op, lo, hi)``: ``reduce`` adds the sender's partial of elements
``[lo, hi)`` into the receiver, ``copy`` overwrites the receiver's elements with the sender's
final value. A reduce stream's partial is the sender's own data plus what its ``deps`` brought
(and nothing else), so a missing dependency shows up as a wrong answer.

Algorithms (WaferLLM §5 and the HPDC'24 wafer-scale reduce paper, Luczynski et al.):
``star`` (everyone sends to the root), ``chain`` (pipelined relay to the root; with a broadcast
back it is the vendor's "pipelined allreduce"), ``chain_stored`` (the same chain relaying whole
messages, store-and-forward), ``two_phase`` (chains in groups of about sqrt(P),
then a chain of group roots), ``ktree`` (WaferLLM's K-tree: K levels of bidirectional chains
towards each group's middle, as its ``two_tree_allreduce`` does for K = 2) and ``ring``
(reduce-scatter then allgather on the interleaved ring, chunks of B/P).
"""
from __future__ import annotations

import math

from accelsim.engines.mesh.netsim import Stream, assign_colours, line_path
from accelsim.engines.mesh.rings import interleaved_ring
from accelsim.errors import AccelsimError

REDUCE_ALGORITHMS = ("star", "chain", "chain_stored", "two_phase", "ktree")
ALLREDUCE_ALGORITHMS = ("ring", "chain", "chain_stored", "two_phase", "ktree", "star")


def _wavelets(elements: int, per_wavelet: int) -> int:
    return max(1, -(-elements // per_wavelet))


class LineBuilder:
    """Collects streams along one row (axis x) or column (axis y)."""

    def __init__(self, p: int, elements: int, per_wavelet: int = 1, row: int = 0, axis: str = "x",
                 name: str = "coll") -> None:
        if p < 1 or elements < 1:
            raise AccelsimError(f"need at least one core and one element, got P={p}, B={elements}", field="grid")
        self.p, self.elements, self.per_wavelet, self.row, self.axis, self.name = p, elements, per_wavelet, row, axis, name
        self.streams: list[Stream] = []

    def send(self, a: int, b: int, op: str, lo: int, hi: int, deps: tuple[int, ...] = (), label: str = "",
             relay: str = "pipelined", multicast: bool = False) -> int:
        direction = 1 if b > a else -1
        colour = (self.name, label, self.axis, self.row if self.axis == "y" else 0, direction, a % 3)
        if multicast:
            colour = (self.name, label, self.axis, direction)
        self.streams.append(Stream(line_path(a, b, self.row, self.axis), _wavelets(hi - lo, self.per_wavelet),
                                   colour, tuple(deps), relay, 0.0, multicast, (op, lo, hi)))
        return len(self.streams) - 1

    # --- reductions towards a root ----------------------------------------------------------
    def chain_towards(self, members: list[int], root: int, feeds: dict[int, list[int]],
                      label: str = "chain", relay: str = "pipelined") -> dict[int, list[int]]:
        """Chain-reduce ``members`` (sorted positions) towards ``root`` from both sides.

        ``feeds[pos]`` are streams already delivering into ``pos``; returns the updated feeds."""
        feeds = {k: list(v) for k, v in feeds.items()}
        for side in (sorted((m for m in members if m > root), reverse=True), sorted(m for m in members if m < root)):
            for a, b in zip(side, side[1:] + [root]):
                sid = self.send(a, b, "reduce", 0, self.elements, tuple(feeds.get(a, [])), label=label, relay=relay)
                feeds.setdefault(b, []).append(sid)
        return feeds

    def reduce(self, algorithm: str, root: int = 0, k: int = 2, groups: int | None = None) -> dict[int, list[int]]:
        """Streams that reduce everyone's vector into ``root``; returns root's incoming streams."""
        p = self.p
        if algorithm == "star":
            return {root: [self.send(a, root, "reduce", 0, self.elements, (), label="star", relay="stored")
                           for a in range(p) if a != root]}
        if algorithm == "chain":
            return self.chain_towards(list(range(p)), root, {})
        if algorithm == "chain_stored":  # message relay: each core waits for the whole vector
            return self.chain_towards(list(range(p)), root, {}, "chain", "stored")
        if algorithm == "two_phase":
            size = max(1, math.isqrt(p - 1) + 1 if p > 1 else 1)
            size = groups and -(-p // groups) or size
            feeds: dict[int, list[int]] = {}
            group_roots = []
            for g0 in range(0, p, size):
                members = list(range(g0, min(p, g0 + size)))
                g_root = min(members, key=lambda m: abs(m - root))
                feeds = self.chain_towards(members, g_root, feeds, "phase1")
                group_roots.append(g_root)
            return self.chain_towards(group_roots, root, feeds, "phase2")
        if algorithm == "ktree":
            if k < 1:
                raise AccelsimError(f"K-tree needs K >= 1, got {k}", field="k", allowed=">= 1")
            active = list(range(p))
            feeds = {}
            for level in range(k, 0, -1):
                if level == 1:
                    return self.chain_towards(active, root if root in active else active[len(active) // 2], feeds,
                                              f"level{level}")
                size = -(-len(active) // groups) if (groups and level == k) else \
                    max(1, math.ceil(len(active) ** (1.0 / level)))
                nxt = []
                for g0 in range(0, len(active), size):
                    members = active[g0:g0 + size]
                    g_root = root if root in members else members[len(members) // 2]
                    feeds = self.chain_towards(members, g_root, feeds, f"level{level}")
                    nxt.append(g_root)
                active = nxt
        raise AccelsimError(f"unknown reduce algorithm {algorithm!r}", field="algorithm", allowed=REDUCE_ALGORITHMS)

    # --- broadcast ------------------------------------------------------------------------
    def broadcast(self, root: int, deps: tuple[int, ...] = (), relay: str = "stored") -> list[int]:
        """Multicast flood from ``root`` to both ends (the router copies to every core it passes)."""
        out = []
        for end in (0, self.p - 1):
            if end != root:
                out.append(self.send(root, end, "copy", 0, self.elements, deps, label="bcast", relay=relay,
                                     multicast=True))
        return out

    def allreduce(self, algorithm: str, k: int = 2, groups: int | None = None) -> None:
        if algorithm == "ring":
            self._ring_allreduce()
            return
        if algorithm not in REDUCE_ALGORITHMS:
            raise AccelsimError(f"unknown allreduce algorithm {algorithm!r}", field="algorithm",
                                allowed=ALLREDUCE_ALGORITHMS)
        # the root in the middle halves the broadcast's distance (WaferLLM's K-tree root choice)
        root = self.p - 1 if algorithm.startswith("chain") else self.p // 2
        into_root = self.reduce(algorithm, root, k, groups).get(root, [])
        self.broadcast(root, tuple(into_root), relay="stored" if algorithm in ("star", "chain_stored") else "pipelined")

    def _ring_allreduce(self) -> None:
        p = self.p
        if p == 1:
            return
        order = interleaved_ring(p)
        bounds = [self.elements * i // p for i in range(p + 1)]
        chunk = lambda c: (bounds[c % p], bounds[c % p + 1])
        last: dict[int, int] = {}  # ring position -> stream it received last
        for step in range(p - 1):  # reduce-scatter
            now = {}
            for r in range(p):
                lo, hi = chunk(r - step)
                if hi == lo:
                    continue
                deps = (last[r],) if r in last else ()
                now[(r + 1) % p] = self.send(order[r], order[(r + 1) % p], "reduce", lo, hi, deps, label="rs",
                                             relay="stored")
            last = now
        for step in range(p - 1):  # allgather of the reduced chunks
            now = {}
            for r in range(p):
                lo, hi = chunk(r + 1 - step)
                if hi == lo:
                    continue
                deps = (last[r],) if r in last else ()
                now[(r + 1) % p] = self.send(order[r], order[(r + 1) % p], "copy", lo, hi, deps, label="ag",
                                             relay="stored")
            last = now


def collective_streams(kind: str, algorithm: str, p: int, elements: int, per_wavelet: int = 1, root: int = 0,
                       k: int = 2, groups: int | None = None, row: int = 0, axis: str = "x") -> list[Stream]:
    """The streams of one collective (``reduce``, ``allreduce`` or ``broadcast``) on a line."""
    b = LineBuilder(p, elements, per_wavelet, row, axis)
    if kind == "reduce":
        b.reduce(algorithm, root, k, groups)
    elif kind == "allreduce":
        b.allreduce(algorithm, k, groups)
    elif kind == "broadcast":
        b.broadcast(root)
    else:
        raise AccelsimError(f"unknown collective {kind!r}", field="collective",
                            allowed=("reduce", "allreduce", "broadcast"))
    return assign_colours(b.streams)
