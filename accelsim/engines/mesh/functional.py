"""Execute a collective's streams on numpy vectors: does the schedule compute the right answer?

Why: a timing model of a reduction is only meaningful if the schedule it times really reduces.
The payload of a stream is derived from its *declared* dependencies only (never from whatever
happened to arrive earlier), so a schedule that forgets a dependency produces a wrong sum here
even when its timing looks plausible.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelsim.engines.mesh.netsim import Core, Stream


def run_vector_streams(streams: Sequence[Stream], init: dict[Core, np.ndarray]) -> dict[Core, np.ndarray]:
    """Final vector at every core after the streams, given each core's initial vector.

    ``reduce`` payload = the sender's initial elements plus the payloads of its reduce deps that
    arrived at the sender for the same elements; ``copy`` payload = the value the sender holds
    through its copy dep, else its own full reduction. A receiver's final value: its copy, if
    one arrived, else its initial data plus every reduce payload it received.
    """
    payload: list[np.ndarray | None] = [None] * len(streams)
    order = _topological(streams)
    received_reduce: dict[Core, list[int]] = {}
    received_copy: dict[Core, list[int]] = {}
    for i in order:
        s = streams[i]
        op, lo, hi = s.tag
        src = s.path[0]
        reduce_deps = [d for d in s.deps if streams[d].path[-1] == src and streams[d].tag[0] == "reduce"
                       and streams[d].tag[1:] == (lo, hi)]
        copy_deps = [d for d in s.deps if streams[d].tag[0] == "copy" and src in _receivers(streams[d])
                     and streams[d].tag[1] <= lo and hi <= streams[d].tag[2]]
        if op == "copy" and copy_deps:
            d = copy_deps[0]
            value = payload[d][lo - streams[d].tag[1]:hi - streams[d].tag[1]]
        else:
            value = init[src][lo:hi].copy()
            for d in reduce_deps:
                value = value + payload[d]
        payload[i] = value
        for core in _receivers(s):
            (received_copy if op == "copy" else received_reduce).setdefault(core, []).append(i)
    final = {}
    for core, vector in init.items():
        out = vector.copy()
        for i in received_reduce.get(core, []):
            _, lo, hi = streams[i].tag
            out[lo:hi] += payload[i]
        for i in received_copy.get(core, []):
            _, lo, hi = streams[i].tag
            out[lo:hi] = payload[i]
        final[core] = out
    return final


def _receivers(s: Stream) -> tuple[Core, ...]:
    return s.path[1:] if s.multicast else (s.path[-1],)


def _topological(streams: Sequence[Stream]) -> list[int]:
    order, seen = [], [False] * len(streams)
    for start in range(len(streams)):
        stack = [(start, False)]
        while stack:
            i, expanded = stack.pop()
            if expanded:
                order.append(i)
                continue
            if seen[i]:
                continue
            seen[i] = True
            stack.append((i, True))
            stack.extend((d, False) for d in streams[i].deps if not seen[d])
    return order
