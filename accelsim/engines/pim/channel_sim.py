"""Command-level simulation of one DRAM channel with PIM commands.

Model (why each choice):
- Requests arrive in program order (a trace). Column commands that need an open row (MAC, RD,
  WR) issue in order. Data-path commands (WRGB, MVSB, MVGB, SFM) use their own path beside the
  MAC path (AttAcc's HBM3-PIM model) and go ready-first: any of them in the controller queue may
  issue as soon as its rules allow, as AttAcc's PIM scheduler picks any ready request before the
  next barrier. Both share the channel's column command bus (one column command per cycle) and
  meet at barriers: no column command after a barrier issues before every column command before it.
- Open-row policy per bank: a column command whose row is open is a row hit; otherwise the
  matching precharge (PRE / PREA / PRESB / PREPB) and activate are issued on the row command bus.
  Row commands may run ahead of the column stream by at most ``window`` requests (the controller
  queue: Ramulator 2's ``ReqBuffer`` holds 32 requests), and across barriers, as AttAcc's PIM
  scheduler lets row commands of later requests go first; a precharge never closes a row an
  earlier request still needs (it waits for that request's column command + tRTP).
- Every command issues at the earliest cycle that satisfies every rule of ``rules.build_rules``.
- All-bank refresh: once the column stream passes each multiple of tREFI, every open bank is
  precharged and each pseudo-channel gets REFab; activates then wait tRFC.
Not modelled: the frontend's head-of-line blocking across channels (channels are independent
here) and refresh blocking data-path commands.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import product

from accelsim.engines.pim.rules import (
    CLOSER,
    COLUMN_COMMANDS,
    OPENER,
    Addr,
    Rule,
    build_rules,
    check_timing_names,
    rules_by_following,
    rules_by_preceding,
    same_scope,
)

Request = tuple[str, Addr]  # (command name or "BARRIER", address)
BARRIER = "BARRIER"
DEFAULT_WINDOW = 32  # Ramulator 2 src/dram_controller/controller.h: ReqBuffer max_size = 32


@dataclass
class ChannelResult:
    cycles: int
    requests: dict[str, int]
    activates: int
    precharges: int
    refreshes: int
    row_hits: int
    row_requests: int  # column requests that need an open row
    trace: list[tuple[int, str, Addr]] = field(default_factory=list)
    refresh_marks: list[tuple[int, int, int]] = field(default_factory=list)  # (request, REF cycle, ACTs so far)
    # after request i: (cycles, activates, row hits, row requests) of the stream cut after request i
    progress: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def row_hit_rate(self) -> float:
        return self.row_hits / self.row_requests if self.row_requests else 1.0


class ChannelSim:
    """One channel: bank states, command histories, the two buses."""

    def __init__(self, timings: dict[str, int], organization: dict[str, int], channel: int = 0,
                 window: int = DEFAULT_WINDOW, refresh: bool = True, record: bool = False,
                 track_progress: bool = False) -> None:
        check_timing_names(timings)
        self.t = timings
        self.rules = build_rules(timings)
        self.by_following = rules_by_following(self.rules)
        self.by_preceding = rules_by_preceding(self.rules)
        # flat (other command, latency, level, ...) lists per command: the inner loop of earliest()
        self.fwd = {n: [(p, r.latency, r.level, r.window) for r in rs for p in r.preceding]
                    for n, rs in self.by_following.items()}
        self.rev = {n: [(f, r.latency, r.level, r) for r in rs for f in r.following]
                    for n, rs in self.by_preceding.items()}
        self.org = organization
        self.channel = channel
        self.window = window
        self.refresh = refresh
        self.record = record
        self.track_progress = track_progress
        self.last_row_t = 0  # the latest row command so far (precharge, activate, refresh)
        self.hist: dict[str, tuple[list[int], list[Addr]]] = {}
        self.last_use: dict[tuple[int, int, int, int], int] = {}  # bank -> its last column command
        self.row_floor = 0  # row commands never move before the last refresh
        self.marks: list[tuple[int, int, int]] = []
        self.row_bus: set[int] = set()
        self.col_bus: set[int] = set()
        self.trace: list[tuple[int, str, Addr]] = []
        self.open_row: dict[tuple[int, int, int, int], int] = {}
        self._banks_cache: dict[tuple[int, int, int, int], list[tuple[int, int, int, int]]] = {}
        self.counts = dict(activates=0, precharges=0, refreshes=0, row_hits=0, row_requests=0)

    # -- timing ---------------------------------------------------------------------------------
    def earliest(self, name: str, addr: Addr, t0: int) -> int:
        """The first cycle >= t0 at which ``name`` breaks no rule with any command already placed,
        whether that command lies before it in time (it constrains ``name``) or after it (row
        commands run ahead of the column stream, so ``name`` may be placed before it)."""
        hist = self.hist
        fwd, rev = self.fwd.get(name, ()), self.rev.get(name, ())
        t = t0
        while True:
            start = t
            for p, lat, level, window in fwd:
                h = hist.get(p)
                if h is None:
                    continue
                times, addrs = h
                seen = 0
                for i in range(bisect_right(times, t) - 1, -1, -1):
                    if times[i] + lat <= t:
                        break
                    if same_scope(addrs[i], addr, level):
                        seen += 1
                        if seen == window:
                            t = times[i] + lat
                            break
            for f, lat, level, rule in rev:
                h = hist.get(f)
                if h is None:
                    continue
                times, addrs = h
                for i in range(bisect_left(times, t), len(times)):
                    if times[i] >= t + lat:
                        break
                    if same_scope(addrs[i], addr, level) and self._crowds(rule, f, times[i], addrs[i], t):
                        t = times[i] + 1
                        break
            if t == start:
                return t

    def _crowds(self, rule: Rule, following: str, t_f: int, a_f: Addr, t_new: int) -> bool:
        """Whether a command placed at ``t_new`` breaks ``rule`` for an existing one at ``t_f``."""
        if rule.window == 1:
            return True
        seen = 1  # the new command
        for p in rule.preceding:
            times, addrs = self.hist.get(p, ([], []))
            for i in range(bisect_left(times, t_f - rule.latency + 1), bisect_left(times, t_f)):
                if same_scope(addrs[i], a_f, rule.level):
                    seen += 1
        return seen >= rule.window

    def issue(self, name: str, addr: Addr, t0: int) -> int:
        t = self.earliest(name, addr, t0)
        bus = self.col_bus if name in COLUMN_COMMANDS else self.row_bus
        while t in bus:
            t = self.earliest(name, addr, t + 1)
        bus.add(t)
        if name not in COLUMN_COMMANDS:
            self.last_row_t = max(self.last_row_t, t)
        times, addrs = self.hist.setdefault(name, ([], []))
        i = bisect_right(times, t)
        times.insert(i, t)
        addrs.insert(i, addr)
        if self.record:
            self.trace.append((t, name, addr))
        return t

    # -- banks ----------------------------------------------------------------------------------
    def banks(self, addr: Addr) -> list[tuple[int, int, int, int]]:
        key = addr[1:5]
        if key not in self._banks_cache:
            o = self.org
            ranges = [range(n) if a == -1 else (a,) for a, n in
                      zip(key, (o["pseudochannel"], o["rank"], o["bankgroup"], o["bank"]))]
            self._banks_cache[key] = list(product(*ranges))
        return self._banks_cache[key]

    # -- the run ----------------------------------------------------------------------------------
    def run(self, requests: list[Request]) -> ChannelResult:
        t_ref = self.t["tREFI"]
        next_refresh = t_ref
        col_clock = data_clock = floor = 0
        last_col = -1
        leave: list[int] = []
        counts: dict[str, int] = {}
        progress: list[tuple[int, int, int, int]] = []
        c = self.counts
        for i, (name, addr) in enumerate(requests):
            if self.track_progress and i:
                # the stream cut after request i-1 ends here: commands never move once placed,
                # and the refresh below belongs to request i (a shorter stream never issues it)
                progress.append((max(last_col, self.last_row_t) + 1, c["activates"], c["row_hits"],
                                 c["row_requests"]))
            enter = leave[i - self.window] if i >= self.window else 0
            if name == BARRIER:
                floor = max(floor, last_col + 1)
                leave.append(max(last_col, 0))
                continue
            counts[name] = counts.get(name, 0) + 1
            while self.refresh and max(col_clock, data_clock) >= next_refresh:
                self.row_floor = self._refresh(max(self.row_floor, next_refresh))
                self.marks.append((i, self.row_floor, self.counts["activates"]))
                next_refresh += t_ref
            if name in OPENER:
                t_act = self._open(name, addr, max(self.row_floor, enter))
                t = self.issue(name, addr, max(col_clock, floor, t_act))
                col_clock = t
                for b in self.banks(addr):
                    self.last_use[b] = t
            else:
                # data-path commands go ready-first within the queue and the barrier window
                # (AttAcc's PIM scheduler picks any ready request before the next barrier)
                t = self.issue(name, addr, max(floor, enter))
                data_clock = max(data_clock, t)
            last_col = max(last_col, t)
            leave.append(t)
        cycles = max(last_col, self.last_row_t) + 1
        if self.track_progress and requests:
            progress.append((cycles, c["activates"], c["row_hits"], c["row_requests"]))
        return ChannelResult(cycles, counts, c["activates"], c["precharges"], c["refreshes"], c["row_hits"],
                             c["row_requests"], sorted(self.trace), self.marks, progress)

    def _open(self, name: str, addr: Addr, t0: int) -> int:
        """Make the row of ``addr`` open in every bank the command covers; the activate's cycle
        (a column command may not be placed before it)."""
        row = addr[5]
        banks = self.banks(addr)
        self.counts["row_requests"] += 1
        states = [self.open_row.get(b) for b in banks]
        if all(s == row for s in states):
            self.counts["row_hits"] += 1
            return 0
        opener = OPENER[name]
        t = t0
        if any(s is not None for s in states):
            # never close a row before the column commands of earlier requests that used it
            t = max(t, max(self.last_use.get(b, -10**9) for b in banks) + self.t["tRTPL"])
            t = self.issue(CLOSER[opener], addr[:5] + (-1,), t)
            self.counts["precharges"] += 1
        t = self.issue(opener, addr, t)
        self.counts["activates"] += 1
        for b in banks:
            self.open_row[b] = row
        return t

    def _refresh(self, t0: int) -> int:
        ch = self.channel
        t = max(t0, max(self.last_use.values(), default=-10**9) + self.t["tRTPL"])
        if self.open_row:
            t = self.issue("PREA", (ch, -1, -1, -1, -1, -1), t)
            self.counts["precharges"] += 1
            self.open_row.clear()
        for pch in range(self.org["pseudochannel"]):
            t = self.issue("REFab", (ch, pch, -1, -1, -1, -1), t)
        self.counts["refreshes"] += 1
        return t


def simulate_channel(requests: list[Request], timings: dict[str, int], organization: dict[str, int],
                     channel: int = 0, window: int = DEFAULT_WINDOW, refresh: bool = True,
                     record: bool = False, track_progress: bool = False) -> ChannelResult:
    """``track_progress``: also return, after every request, the cycles and row counts the stream
    cut there would have, so one run answers every shorter prefix of the same stream."""
    return ChannelSim(timings, organization, channel, window, refresh, record, track_progress).run(requests)
