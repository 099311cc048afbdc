"""GEMV on AiM-style bank PIM with its global buffer: the input vector is written into the buffer
by WRGB commands over the channel's external bus and the results are read back by RDMAC.

Why a separate stream: an all-bank MAC (MAC_ABK) multiplies a weight column in every bank by
the matching slice of the channel's global buffer (GB), so before the MACs of a matrix row can
run, that row's slice of the input vector must be in the GB. With a GB of one DRAM row (2 KB,
1024 BF16 words), a neuron of reduction length k is stored over ceil(k / 1024) rows (CENT's
weight layout, ``rows_per_vector``), and each bank accumulates one neuron per MAC register, so
one GB fill serves at most ``registers`` neurons per bank before they are read out.

Two orders, and the mapper picks the one that simulates faster (:func:`best_order`):
- ``refill`` (CENT's ``--GEMV reuse-GB``): neurons in groups of ``registers``; for each group,
  every chunk of the vector is written again, the group's rows of that chunk are MACed, and the
  group's finished sums are read once. WRGB bursts = groups x chunks x bursts per chunk.
- ``keep``: each chunk is written once; all groups MAC it, reading partial sums after every
  chunk (the host adds them). RDMAC reads = chunks x neurons.
A vector that fits one chunk (k <= buffer words) is written once in either order; neurons of such
short vectors share a row (PIM-GPT's concatenation) and the same buffer contents.

Sources: CENT (Yufeng98/CENT cent_simulation/aim_sim.py, commit 863bd7d: the channel's GB is
``DRAM_column`` words; ``WR_GB``, ``MAC_ABK``, ``RD_MAC`` per channel mask; run_sim.py
``--reuse_size`` default 32 "GB reuse size, depending on register number") and aim_simulator's
command timings (``accelsim.engines.pim.rules``). Batch > 1: each input vector streams the
matrix again (the GB holds one vector), so cycles scale with the vector count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from accelsim.engines.pim.channel_sim import BARRIER, Request, simulate_channel
from accelsim.errors import AccelsimError

ORDERS = ("refill", "keep")
EXACT_REQUESTS = 40000  # streams up to this many requests are simulated whole
ALL = (0, -1, -1, -1, -1, -1)


@dataclass(frozen=True)
class GbGemv:
    """One channel's share of a GEMV: ``neurons`` per bank, each a dot product of length ``k``."""

    k: int
    neurons: int
    dtype_bytes: int
    buffer_bytes: int
    registers: int
    row_bytes: int
    access_bytes: int

    def __post_init__(self) -> None:
        for name in ("k", "neurons", "dtype_bytes", "buffer_bytes", "registers"):
            if getattr(self, name) < 1:
                raise AccelsimError(f"must be >= 1, got {getattr(self, name)}", field=name)
        if self.buffer_bytes > self.row_bytes or self.buffer_bytes % self.access_bytes:
            raise AccelsimError(f"a {self.buffer_bytes}-byte buffer must be whole {self.access_bytes}-byte bursts "
                                f"and at most one {self.row_bytes}-byte row", field="global_buffer_bytes")

    @property
    def buffer_words(self) -> int:
        return self.buffer_bytes // self.dtype_bytes

    @property
    def chunks(self) -> int:
        return math.ceil(self.k / self.buffer_words)

    @property
    def groups(self) -> int:
        return math.ceil(self.neurons / self.registers)

    def chunk_words(self, c: int) -> int:
        return min(self.buffer_words, self.k - c * self.buffer_words)

    def bursts(self, words: int) -> int:
        return math.ceil(words * self.dtype_bytes / self.access_bytes)

    @property
    def neurons_per_row(self) -> int:
        """Short vectors (one chunk) are concatenated to fill rows; long ones start a row each chunk."""
        return max(1, self.row_bytes // (self.k * self.dtype_bytes)) if self.chunks == 1 else 1

    def row_of(self, neuron: int, chunk: int) -> int:
        if self.chunks == 1:
            return neuron // self.neurons_per_row
        return neuron * self.chunks + chunk  # a chunk fills at most one row (buffer <= row)

    def fills(self, order: str) -> int:
        """How many times the buffer is (re)written."""
        if self.chunks == 1:
            return 1
        return self.groups * self.chunks if order == "refill" else self.chunks

    def counts(self, order: str) -> dict[str, int]:
        """Command counts of the stream (the closed form the simulation must reproduce)."""
        check_order(order)
        wrgb = sum(self.bursts(self.chunk_words(c)) for c in range(self.chunks))
        wrgb *= self.groups if order == "refill" and self.chunks > 1 else 1
        macs = self.neurons * sum(self.bursts(self.chunk_words(c)) for c in range(self.chunks))
        rdmac = self.neurons * (self.chunks if order == "keep" else 1)
        return {"WRGB": wrgb, "MACAB": macs, "RDMAC": rdmac}


def check_order(order: str) -> None:
    if order not in ORDERS:
        raise AccelsimError(f"unknown GEMV order {order!r}", field="order", allowed=list(ORDERS))


def _macs(g: GbGemv, neurons: range, chunk: int) -> list[Request]:
    cols = g.bursts(g.chunk_words(chunk))
    return [("MACAB", (0, -1, -1, -1, -1, g.row_of(j, chunk))) for j in neurons for _ in range(cols)]


def _fill(g: GbGemv, chunk: int) -> list[Request]:
    return [("WRGB", ALL)] * g.bursts(g.chunk_words(chunk)) + [(BARRIER, ALL)]


def _read(n: int) -> list[Request]:
    return [(BARRIER, ALL)] + [("RDMAC", ALL)] * n + [(BARRIER, ALL)]


def units(g: GbGemv, order: str) -> list[list[Request]]:
    """The stream as its outer-loop iterations (groups for ``refill``, chunks for ``keep``)."""
    check_order(order)
    groups = [range(s, min(s + g.registers, g.neurons)) for s in range(0, g.neurons, g.registers)]
    out: list[list[Request]] = []
    if order == "refill" or g.chunks == 1:
        for i, grp in enumerate(groups):
            reqs: list[Request] = []
            for c in range(g.chunks):
                if g.chunks > 1 or i == 0:
                    reqs += _fill(g, c)
                reqs += _macs(g, grp, c)
                if g.chunks > 1:
                    reqs.append((BARRIER, ALL))  # the next fill overwrites what these MACs read
            out.append(reqs + _read(len(grp)))
    else:
        for c in range(g.chunks):
            reqs = _fill(g, c)
            for grp in groups:
                reqs += _macs(g, grp, c) + _read(len(grp))
            out.append(reqs)
    return out


def requests(g: GbGemv, order: str) -> list[Request]:
    return [r for u in units(g, order) for r in u]


@lru_cache(maxsize=4096)
def gb_gemv_cycles(g: GbGemv, order: str, timings_key: tuple, org_key: tuple) -> tuple[float, float]:
    """(cycles, row-hit rate) of one channel running the stream; streams longer than
    ``EXACT_REQUESTS`` are simulated over a prefix of whole outer iterations and extrapolated by
    the per-iteration cost between two prefixes (iterations differ only in row addresses)."""
    timings, org = dict(timings_key), dict(org_key)
    us = units(g, order)
    total = sum(len(u) for u in us)
    if total <= EXACT_REQUESTS or len(us) < 4:
        res = simulate_channel([r for u in us for r in u], timings, org)
        return float(res.cycles), res.row_hit_rate
    per_unit = total / len(us)
    n2 = max(2, min(len(us) - 1, int(EXACT_REQUESTS // per_unit)))
    n1 = n2 // 2
    # the n1-iteration stream is a prefix of the n2 one: one run gives both (placed commands never move)
    r2 = simulate_channel([r for u in us[:n2] for r in u], timings, org, track_progress=True)
    r1_cycles = r2.progress[sum(len(u) for u in us[:n1]) - 1][0]
    rest = sum(len(u) for u in us[n2:]) / (sum(len(u) for u in us[n1:n2]))
    cycles = r2.cycles + rest * (r2.cycles - r1_cycles)
    return float(math.ceil(cycles)), r2.row_hit_rate


def best_order(g: GbGemv, timings_key: tuple, org_key: tuple) -> tuple[str, float, float]:
    """The mapper's choice: the order with the fewest simulated cycles (ties: fewer refills)."""
    scored = [(gb_gemv_cycles(g, o, timings_key, org_key), g.fills(o), o) for o in ORDERS]
    (cycles, hit), _, order = min(scored, key=lambda s: (s[0][0], s[1]))
    return order, cycles, hit
