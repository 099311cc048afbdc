"""Replay a command trace and report the first broken rule.

Independent of the simulator's search: it walks the trace in time order, keeps the bank states
itself and, for every command, looks back over the commands placed before it (by time, not by
the order the simulator computed them). A trace is a list of ``(cycle, command, address)``;
several channels may be mixed (the channel is the first address field).

Checked: every rule of ``rules.build_rules`` (tRCD, tRP, tRAS, tRC, tRTP, tCCD_S/L, tRRD_S/L,
tFAW, tRFC, the data bus, the PIM MAC spacings), one row and one column command per cycle and
channel, the open-row state (a column command needs its row open in every bank it covers, an
activate needs the bank closed, a refresh needs its pseudo-channel closed), and refresh
frequency (JEDEC lets a device postpone at most 8 refreshes, so no gap between refreshes of a
pseudo-channel may exceed 9 x tREFI).
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import product

from accelsim.engines.pim.rules import (
    ACTS,
    COLUMN_COMMANDS,
    PRES,
    Addr,
    build_rules,
    rules_by_following,
    same_scope,
)

MAX_POSTPONED_REFRESHES = 8


@dataclass(frozen=True)
class Violation:
    index: int  # position in the time-sorted trace
    cycle: int
    command: str
    address: Addr
    rule: str
    detail: str


def check_trace(trace: list[tuple[int, str, Addr]], timings: dict[str, int],
                organization: dict[str, int], check_refresh: bool = True) -> Violation | None:
    """The first violation in ``trace``, or None if every rule holds."""
    rules = build_rules(timings)
    by_following = rules_by_following(rules)
    events = sorted(enumerate(trace), key=lambda e: (e[1][0], e[0]))
    times: dict[str, list[int]] = {}
    addrs: dict[str, list[Addr]] = {}
    open_row: dict[tuple[int, int, int, int, int], int] = {}
    bus: set[tuple[int, int, bool]] = set()
    last_ref: dict[tuple[int, int], int] = {}
    o = organization
    sizes = (o["pseudochannel"], o["rank"], o["bankgroup"], o["bank"])

    def banks(a: Addr):
        return [(a[0],) + b for b in product(*[range(n) if x == -1 else (x,) for x, n in zip(a[1:5], sizes)])]

    for k, (_, (t, name, a)) in enumerate(events):
        def bad(rule: str, detail: str, k=k, t=t, name=name, a=a) -> Violation:
            return Violation(k, t, name, a, rule, detail)

        key = (a[0], t, name in COLUMN_COMMANDS)
        if key in bus:
            return bad("command bus", f"a second {'column' if key[2] else 'row'} command in cycle {t}")
        bus.add(key)
        for rule in by_following.get(name, ()):
            for p in rule.preceding:
                ts, as_ = times.get(p, []), addrs.get(p, [])
                lo = bisect_left(ts, t - rule.latency + 1)
                hits = [ts[i] for i in range(lo, len(ts)) if same_scope(as_[i], a, rule.level)]
                if len(hits) >= rule.window:
                    first = hits[-rule.window]
                    return bad(rule.name, f"{name} at {t} only {t - first} cycles after {p} at {first}; "
                                          f"needs {rule.latency}" + (f" for {rule.window} commands" if rule.window > 1 else ""))
        targets = banks(a)
        if name in ACTS:
            for b in targets:
                if b in open_row:
                    return bad("bank state", f"activate of bank {b} whose row {open_row[b]} is open")
            for b in targets:
                open_row[b] = a[5]
        elif name in PRES:
            for b in targets:
                open_row.pop(b, None)
        elif name == "REFab":
            for b in targets:
                if b in open_row:
                    return bad("bank state", f"refresh while bank {b} is open")
            if check_refresh:
                prev = last_ref.get((a[0], a[1]), 0)
                if t - prev > (MAX_POSTPONED_REFRESHES + 1) * timings["tREFI"]:
                    return bad("tREFI", f"{t - prev} cycles since the last refresh of pseudo-channel {a[1]}")
            last_ref[(a[0], a[1])] = t
        elif name in ("RD", "WR", "MACAB", "MACSB", "MACPB"):
            for b in targets:
                if open_row.get(b) != a[5]:
                    return bad("bank state", f"{name} to row {a[5]} of bank {b}, open row {open_row.get(b)}")
        ts = times.setdefault(name, [])
        ts.append(t)
        addrs.setdefault(name, []).append(a)
    if check_refresh and events:
        end = events[-1][1][0]
        for ch in {e[1][2][0] for e in events}:
            for pch in range(o["pseudochannel"]):
                prev = last_ref.get((ch, pch), 0)
                if end - prev > (MAX_POSTPONED_REFRESHES + 1) * timings["tREFI"]:
                    return Violation(len(events), end, "end", (ch, pch, -1, -1, -1, -1), "tREFI",
                                     f"{end - prev} cycles without refresh of pseudo-channel {pch}")
    return None
