"""Hop-by-hop simulation of messages (streams of wavelets) on a 2D mesh of routers.

Why a simulator and not only closed forms: contention (two streams on one link), relay stages
(software on a core receives, combines and re-sends) and routing-path limits decide what a
wafer kernel costs, and they interact; closed forms (``closed_forms.py``) are the check.

Model, per stream of ``wavelets`` words along ``path`` (a list of neighbouring cores):

- every stream pays one relay stage ``beta`` before its head leaves the source core (the ramp
  into the router, DSD set-up and, for a relay, the combine), once its inputs are there:
  ``pipelined`` inputs (element-wise relay, as in a chain reduce) let the head leave ``beta``
  after the input's head arrives, but its tail cannot leave before the input's tail has arrived;
  ``stored`` inputs (a whole tile forwarded) must have arrived entirely;
- the head takes ``alpha`` per hop; each directed link carries ``link_wavelets_per_cycle``, so a
  stream holds every link of its path for ``wavelets / rate`` cycles, and a stream that finds a
  link busy waits at the previous router (wormhole back-pressure keeps it on the upstream
  links meanwhile);
- the tail reaches the destination ``wavelets / rate`` after the head (``tail = head + B``,
  the convention of the HPDC'24 model, Luczynski et al., arXiv 2404.15888, in which a chain
  reduce of B wavelets over P cores takes B + (2 T_R + 2)(P - 1) cycles).
- with ``ramp_wavelets_per_cycle`` set, the ramp between a core and its router is a shared
  resource too, one per direction: every stream leaving a core holds its source's off-ramp
  (``("tx", core)``), every stream delivered to a core holds that core's on-ramp (``("rx", core)``;
  a multicast holds the on-ramp of every core it feeds), so two tiles a core sends (or receives)
  at once serialise on the ramp. Why: the HPDC'24 model's contention term C counts "the most
  wavelets through one PE", which is what makes its star reduce cost B (P - 1) whatever the
  root's position; the Cerebras SDK's conceptual view has a PE send or receive one 32-bit
  wavelet per cycle. A ramp ``r`` times as wide as a link has ``floor(r)`` lanes; a stream moves
  at the slower of link and ramp. The ramp's latency T_R is already inside ``beta``. Without
  ``ramp_wavelets_per_cycle`` (None) ramps are free, as in the first version of this model.

Streams are started in the order their inputs allow, earliest first, then by ``priority`` (lower
first), then by index; a stream reserves every resource it crosses when it starts (first come,
first served per resource, no back-filling of idle gaps). ``reserved`` pre-books resources (lane
free times), so a schedule can be simulated against traffic that is known to go first. Every router's colours are counted: a colour may carry one routing rule per router
(one input port), so two streams that would need different rules on one colour are a routing
conflict, and more colours at a router than the device holds is an error for the caller.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Core = tuple[int, int]
RAMP = "ramp"


@dataclass(frozen=True)
class Stream:
    """One message: ``wavelets`` words from ``path[0]`` to ``path[-1]`` (multicast: every core on
    the path receives it when ``multicast``)."""

    path: tuple[Core, ...]
    wavelets: int
    colour: Hashable
    deps: tuple[int, ...] = ()
    relay: Literal["pipelined", "stored"] = "stored"
    ready_cycles: float = 0.0
    multicast: bool = False
    tag: object = None  # what the stream carries (for functional execution)
    priority: int = 0  # among streams ready at the same time, lower starts (and books its resources) first

    def __post_init__(self) -> None:
        if len(self.path) < 2:
            raise ValueError("a stream needs a source and a different destination")
        for (x0, y0), (x1, y1) in zip(self.path, self.path[1:]):
            if abs(x0 - x1) + abs(y0 - y1) != 1:
                raise ValueError(f"path step {(x0, y0)} -> {(x1, y1)} is not between neighbours")
        if self.wavelets <= 0:
            raise ValueError("a stream carries at least one wavelet")

    @property
    def hops(self) -> int:
        return len(self.path) - 1


@dataclass
class NetResult:
    """Times per stream and what the plan used."""

    start: list[float]
    head: list[float]  # head arrival at the last core
    tail: list[float]  # tail arrival at the last core
    makespan_cycles: float
    wavelet_hops: float  # "energy" E of the HPDC'24 model
    max_link_wavelets: float  # contention C: most wavelets through one directed link
    depth: int  # most relay stages on one dependency chain (D)
    max_hops: int  # most hops of one stream (a lower bound on L)
    colours_per_router: int  # most colours any router holds
    conflicts: list[str] = field(default_factory=list)
    free_after: dict = field(default_factory=dict)  # resource -> lane free times when every stream is placed


def _port(a: Core, b: Core) -> str:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return {(1, 0): "E", (-1, 0): "W", (0, 1): "S", (0, -1): "N"}[(dx, dy)]


def routing_rules(streams: Sequence[Stream]) -> tuple[int, list[str]]:
    """Most colours at one router, and every colour used with two input ports at one router."""
    rules: dict[tuple[Core, Hashable], set[str]] = defaultdict(set)
    for s in streams:
        for i, core in enumerate(s.path):
            in_port = RAMP if i == 0 else _port(core, s.path[i - 1])
            rules[(core, s.colour)].add(in_port)
    per_router: dict[Core, int] = defaultdict(int)
    conflicts = []
    for (core, colour), ports in rules.items():
        per_router[core] += 1
        if len(ports) > 1:
            conflicts.append(f"colour {colour!r} enters router {core} from {sorted(ports)}")
    return max(per_router.values(), default=0), conflicts


def tx(core: Core) -> tuple[str, Core]:
    """The off-ramp of ``core`` (core to router) as a netsim resource."""
    return ("tx", core)


def rx(core: Core) -> tuple[str, Core]:
    """The on-ramp of ``core`` (router to core) as a netsim resource."""
    return ("rx", core)


def _resources(s: Stream, alpha: float, ramps: bool) -> list[tuple[Hashable, float]]:
    """(resource, latency from the previous one) in the order the stream's head takes them."""
    out: list[tuple[Hashable, float]] = [(tx(s.path[0]), 0.0)] if ramps else []
    for j, link in enumerate(zip(s.path, s.path[1:])):
        if ramps and s.multicast and j > 0:  # the router copies to its core as the head passes
            out.append((rx(s.path[j]), alpha))
        out.append((link, 0.0 if j == 0 or (ramps and s.multicast) else alpha))
    if ramps:
        out.append((rx(s.path[-1]), alpha))
    return out


def simulate_streams(streams: Sequence[Stream], alpha_cycles: float, beta_cycles: float,
                     link_wavelets_per_cycle: float = 1.0, ramp_wavelets_per_cycle: float | None = None,
                     reserved: dict[Hashable, list[float]] | None = None) -> NetResult:
    """Schedule every stream hop by hop; see the module docstring for the rules."""
    n = len(streams)
    ramps = ramp_wavelets_per_cycle is not None
    if ramps and not ramp_wavelets_per_cycle > 0:
        raise ValueError("a ramp carries a positive number of wavelets per cycle")
    rate = min(link_wavelets_per_cycle, ramp_wavelets_per_cycle) if ramps else link_wavelets_per_cycle
    ramp_lanes = max(1, int(ramp_wavelets_per_cycle // rate)) if ramps else 1
    children: list[list[int]] = [[] for _ in range(n)]
    for i, s in enumerate(streams):
        for d in s.deps:
            if not 0 <= d < n or d == i:
                raise ValueError(f"stream {i} depends on unknown stream {d}")
            children[d].append(i)
    waiting = [len(s.deps) for s in streams]
    start, head, tail = [0.0] * n, [0.0] * n, [0.0] * n
    depth = [0] * n
    free: dict[Hashable, list[float]] = defaultdict(list, {k: list(v) for k, v in (reserved or {}).items()})
    link_load: dict[tuple[Core, Core], float] = defaultdict(float)
    ready_heap: list[tuple[float, int, int]] = []

    def lanes_of(resource: Hashable) -> int:
        return ramp_lanes if isinstance(resource[0], str) else 1

    def earliest(i: int) -> float:
        s = streams[i]
        occupancy = s.wavelets / rate
        t = s.ready_cycles + beta_cycles
        for d in s.deps:
            if s.relay == "pipelined":
                t = max(t, head[d] + beta_cycles, tail[d] + beta_cycles - occupancy)
            else:
                t = max(t, tail[d] + beta_cycles)
        return t

    for i in range(n):
        if waiting[i] == 0:
            heapq.heappush(ready_heap, (earliest(i), streams[i].priority, i))
    done = 0
    while ready_heap:
        t0, _, i = heapq.heappop(ready_heap)
        s = streams[i]
        occupancy = s.wavelets / rate
        chain = _resources(s, alpha_cycles, ramps)
        enter: list[float] = []
        lane: list[int] = []
        t = t0
        for j, (resource, latency) in enumerate(chain):
            booked = free[resource]
            if len(booked) < lanes_of(resource):  # an unused lane
                k, at = len(booked), 0.0
                booked.append(0.0)
            else:
                k = min(range(len(booked)), key=booked.__getitem__)
                at = booked[k]
            t = max(t if j == 0 else enter[-1] + latency, at)
            enter.append(t)
            lane.append(k)
        arrive_head = enter[-1] if ramps else enter[-1] + alpha_cycles
        release = enter[-1] + occupancy
        for j in range(len(chain) - 1, -1, -1):  # back-pressure: upstream resources hold until the tail passes
            release = max(enter[j] + occupancy, release - (chain[j + 1][1] if j < len(chain) - 1 else 0.0))
            resource = chain[j][0]
            free[resource][lane[j]] = release
            if not isinstance(resource[0], str):
                link_load[resource] += s.wavelets
        start[i], head[i], tail[i] = enter[0], arrive_head, arrive_head + occupancy
        depth[i] = 1 + max((depth[d] for d in s.deps), default=0)
        done += 1
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready_heap, (earliest(c), streams[c].priority, c))
    if done != n:
        raise ValueError("the streams' dependencies form a cycle")
    colours, conflicts = routing_rules(streams)
    return NetResult(start, head, tail, max(tail, default=0.0),
                     float(sum(s.wavelets * s.hops for s in streams)), max(link_load.values(), default=0.0),
                     max(depth, default=0), max((s.hops for s in streams), default=0), colours, conflicts,
                     dict(free))


def line_path(a: int, b: int, row: int = 0, axis: str = "x") -> tuple[Core, ...]:
    """The straight path from position ``a`` to ``b`` along one row (x) or column (y)."""
    step = 1 if b > a else -1
    positions = range(a, b + step, step)
    return tuple((p, row) if axis == "x" else (row, p) for p in positions)


def assign_colours(streams: Sequence[Stream]) -> list[Stream]:
    """Give every stream the lowest colour whose rule agrees at every router it crosses.

    Why greedy: a router holds one rule (one input port) per colour, so streams that meet at a
    router from different ports need different colours; streams that repeat a route (the same
    shift every step) share one. The count is an upper bound on the fewest colours a plan needs,
    and what the device's colour limit is checked against.
    """
    from dataclasses import replace

    rules: dict[tuple[Core, int], str] = {}
    out = []
    for s in streams:
        ports = [(core, RAMP if i == 0 else _port(core, s.path[i - 1])) for i, core in enumerate(s.path)]
        colour = 0
        while any(rules.get((core, colour), port) != port for core, port in ports):
            colour += 1
        for core, port in ports:
            rules[(core, colour)] = port
        out.append(replace(s, colour=colour))
    return out
