"""AttAcc's decode-attention command stream for one HBM3 stack, rebuilt from its structure.

AttAcc (scale-snu/attacc_simulator, pim_ramulator_src/trace_gen/gen_trace_attacc_{bank,bg,buffer}.py,
commit c600051) times one batch of decode attention (score GEMV, softmax, context GEMV) for
``nhead`` (request x head) operations in one stack of 16 channels. Heads are dealt to channels
16 at a time (iteration ``itr``); the last iteration may fill only ``nhead % 16`` channels.
Iterations are processed in pairs so that one head's softmax overlaps the next head's score.
This module rebuilds that structure (which commands, in which order, where the barriers are,
including two quirks of the published generators that the published counts contain: the second
head of a pair replays the first head's context commands, and an odd last iteration repeats its
softmax and MVGB once per score window), so the command counts can be checked against the
published cycle cache and the stream can be timed by ``channel_sim``.

Addresses use AttAcc's linear HBM3-PIM map: 5 offset bits, 5 column, 14 row, 2 bank, 2 bank
group, 1 rank, 1 pseudo-channel, 4 channel bits.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from accelsim.engines.pim.channel_sim import BARRIER, Request
from accelsim.errors import AccelsimError

N_CHANNEL, N_PCH, N_RANK, N_BG, N_BANK = 16, 2, 2, 4, 4
COL_B, ROW_B, BANK_B, BG_B, RANK_B, PCH_B, CH_B = 32, 1024, 2 ** 24, 2 ** 26, 2 ** 28, 2 ** 29, 2 ** 30
LEVELS = ("bank", "bankgroup", "buffer")
MAC_NAME = {"bank": "MACAB", "bankgroup": "MACSB", "buffer": "MACPB"}


def decode(addr: int) -> tuple[int, int, int, int, int, int]:
    """Byte address -> (channel, pseudochannel, rank, bankgroup, bank, row)."""
    return ((addr >> 30) & 15, (addr >> 29) & 1, (addr >> 28) & 1, (addr >> 26) & 3, (addr >> 24) & 3,
            (addr >> 10) & 0x3FFF)


@dataclass(frozen=True)
class AttentionCase:
    level: str  # bank | bankgroup | buffer
    heads: int
    head_dim: int
    context: int
    dtype_bytes: int
    max_context: int = 4096  # the generators' --maxlen default: spaces the heads' key partitions

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise AccelsimError(f"unknown PIM level {self.level!r}", field="level", allowed=LEVELS)
        for name in ("heads", "head_dim", "context", "dtype_bytes"):
            if getattr(self, name) < 1:
                raise AccelsimError(f"must be >= 1, got {getattr(self, name)}", field=name)
        if COL_B % self.dtype_bytes:
            raise AccelsimError(f"{self.dtype_bytes}-byte elements do not divide a 32-byte column",
                                field="dtype_bytes", allowed="1, 2, 4, 8, 16, 32")

    @property
    def lanes(self) -> int:
        return COL_B // self.dtype_bytes

    @property
    def units(self) -> int:
        """Parallel GEMV units per channel along the context (pCH x rank x BG, or pCH for buffer)."""
        return N_PCH if self.level == "buffer" else N_PCH * N_RANK * N_BG

    @property
    def k_score(self) -> int:
        split = N_BANK if self.level == "bank" else 1
        return math.ceil(self.head_dim / (split * self.lanes))

    def channels_per_itr(self) -> list[int]:
        n_itr = math.ceil(self.heads / N_CHANNEL)
        out = [N_CHANNEL] * n_itr
        if self.heads % N_CHANNEL:
            out[-1] = self.heads % N_CHANNEL
        return out


class _Itr:
    """One iteration's command lists for every channel (lines in the generators' order)."""

    def __init__(self, case: AttentionCase, itr: int, vc: int) -> None:
        self.case, self.vc = case, vc
        key = itr * math.ceil(case.max_context * case.head_dim / (N_PCH * N_RANK * N_BG * N_BANK))
        val = key + 2 ** 23
        c, lv, lanes = case, case.level, case.lanes
        chs = range(vc)
        n_len = math.ceil(c.context / c.units)
        self.mac_s = [_Macs(self, key, range(n * c.k_score, (n + 1) * c.k_score), chs) for n in range(n_len)]
        self.dummy = _Macs(self, key, range(1), chs)
        groups = [n for n in range(n_len) if n % 16 == 15 or n == n_len - 1]
        self.mvsb_s = [self._mvsb_score(key, chs) for _ in groups]
        n_ctx = math.ceil(c.head_dim / ((N_BANK if lv == "bank" else 1) * lanes))
        self.mac_c = [_Macs(self, val, range(n * n_len, (n + 1) * n_len), chs) for n in range(n_ctx)]
        self.mvsb_c = [self._mvsb_ctx(val, chs) for _ in range(n_ctx)]
        if lv == "bank":
            self.wrgb = [("WRGB", decode(key + ch * CH_B + b * BANK_B + col)) for b in range(N_BANK)
                         for col in range(c.k_score) for ch in chs]
        else:
            self.wrgb = [("WRGB", decode(key + ch * CH_B + col)) for col in range(c.k_score) for ch in chs]
        if lv == "buffer":
            self.mvgb = [("MVGB", decode(val + ch * CH_B + col)) for col in range(math.ceil(c.context / (N_PCH * lanes)))
                         for ch in chs]
        else:
            n_col = math.ceil(c.context / (N_PCH * N_RANK * N_BG * lanes))
            self.mvgb = [("MVGB", decode(val + ch * CH_B + r * RANK_B + g * BG_B + col)) for r in range(N_RANK)
                         for g in range(N_BG) for col in range(n_col) for ch in chs]
        self.sfm = [("SFM", decode(ch * CH_B)) for ch in chs]

    def _mac(self, base: int, idx: int, ch: int) -> Request:
        lv = self.case.level
        if lv == "bank":
            a = decode(base + ch * CH_B + idx * COL_B)
            return "MACAB", (a[0], -1, -1, -1, -1, a[5])
        if lv == "bankgroup":
            col, cols = idx % 32, idx // 32
            a = decode(base + ch * CH_B + (cols % N_BANK) * BANK_B + (cols // N_BANK) * ROW_B + col * COL_B)
            return "MACSB", (a[0], -1, -1, -1, a[4], a[5])
        g8, rest = idx % (N_BG * N_RANK), idx // (N_BG * N_RANK)
        bank, rest = rest % N_BANK, rest // N_BANK
        col, row = rest % 32, rest // 32
        a = decode(base + ch * CH_B + g8 * BG_B + bank * BANK_B + row * ROW_B + col * COL_B)
        return "MACPB", (a[0], -1, a[2], a[3], a[4], a[5])

    def _mvsb_score(self, base: int, chs: range) -> list[Request]:
        if self.case.level == "buffer":
            return [("MVSB", decode(base + ch * CH_B)) for ch in chs]
        return [("MVSB", decode(base + ch * CH_B + r * RANK_B + g * BG_B)) for g in range(N_BG)
                for r in range(N_RANK) for ch in chs]

    def _mvsb_ctx(self, base: int, chs: range) -> list[Request]:
        lv = self.case.level
        if lv == "bank":
            return [("MVSB", decode(base + ch * CH_B + r * RANK_B + b * BANK_B)) for b in range(N_BANK)
                    for r in range(N_RANK) for ch in chs]
        if lv == "bankgroup":
            return [("MVSB", decode(base + ch * CH_B + r * RANK_B)) for r in range(N_RANK) for ch in chs]
        return [("MVSB", decode(base + ch * CH_B)) for ch in chs]


class _Macs:
    """One group of MAC lines (index outer, channel inner), built only when iterated: counting a
    stream then costs nothing per MAC (a buffer-level stream has millions)."""

    def __init__(self, itr: _Itr, base: int, idxs: range, chs: range) -> None:
        self.itr, self.base, self.idxs, self.chs = itr, base, idxs, chs

    def __len__(self) -> int:
        return len(self.idxs) * len(self.chs)

    def __iter__(self):
        mac = self.itr._mac
        return (mac(self.base, idx, ch) for idx in self.idxs for ch in self.chs)


class _Counter:
    """A sink that counts requests by name instead of storing them."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def extend(self, items) -> None:
        if isinstance(items, _Macs):
            self.counts[MAC_NAME[items.itr.case.level]] += len(items)
        else:
            self.counts.update(name for name, _ in items)


def _chunk(lines: list, j: int, parts: int) -> list:
    stride = int(len(lines) / parts) if parts else 0
    return lines[j * stride:(j + 1) * stride]


def attention_stream(case: AttentionCase, sink=None) -> list[Request]:
    """The whole stack's request stream in trace order (barriers as one request per channel);
    with ``sink`` (an object with ``extend``), the requests go there instead."""
    vcs = case.channels_per_itr()
    itrs = [_Itr(case, i, vc) for i, vc in enumerate(vcs)]
    barrier = [(BARRIER, (ch, -1, -1, -1, -1, -1)) for ch in range(N_CHANNEL)]
    out = [] if sink is None else sink
    length = math.ceil(case.context / case.units / 16)
    n_ctx = len(itrs[0].mac_c)

    def score_windows(a: _Itr, extra) -> None:
        for j in range(length + 1):
            if j < length:
                for grp in a.mac_s[j * 16:(j + 1) * 16]:
                    out.extend(grp)
            if j > 0:
                out.extend(a.mvsb_s[j - 1])
            extra(j)
            if j < length:
                out.extend(barrier)

    for i in range(0, len(itrs) - 1, 2):
        h0, h1 = itrs[i], itrs[i + 1]
        out.extend(h0.wrgb)
        if i == 0:
            out.extend(h0.dummy)  # the generators' "dummy MAC": the first column, once per channel
        out.extend(barrier)
        score_windows(h0, lambda j: out.extend(_chunk(h1.wrgb, j, length)) if j < length else None)

        def softmax0(j: int, h0=h0) -> None:
            if j == 0:
                out.extend(h0.sfm)
            if j < length and j >= length // 2:
                out.extend(_chunk(h0.mvgb, j - length // 2, math.ceil(length / 2)))
        score_windows(h1, softmax0)
        for second in (False, True):  # the second pass replays h0's context (generator quirk)
            for j in range(n_ctx + 1):
                if j < n_ctx:
                    out.extend(h0.mac_c[j])
                if j > 0:
                    out.extend(h0.mvsb_c[j - 1])
                if not second:
                    if j == 0:
                        out.extend(h1.sfm)
                    if j < n_ctx and j >= n_ctx // 2:
                        out.extend(_chunk(h1.mvgb, j - n_ctx // 2, math.ceil(n_ctx / 2)))
                if j < n_ctx:
                    out.extend(barrier)
    if len(itrs) % 2:
        h = itrs[-1]
        out.extend(h.wrgb)
        out.extend(barrier)

        for j in range(length + 1):
            if j < length:
                for grp in h.mac_s[j * 16:(j + 1) * 16]:
                    out.extend(grp)
            if j > 0:
                out.extend(h.mvsb_s[j - 1])
            if j < length:
                out.extend(barrier)
            out.extend(h.sfm)
            out.extend(h.mvgb)
            out.extend(barrier)
        for j in range(n_ctx + 1):
            if j < n_ctx:
                out.extend(h.mac_c[j])
            if j > 0:
                out.extend(h.mvsb_c[j - 1])
            if j < n_ctx:
                out.extend(barrier)
    return out


COUNT_NAMES = {"mac": ("MACAB", "MACSB", "MACPB"), "softmax": ("SFM",), "mvgb": ("MVGB",), "mvsb": ("MVSB",),
               "wrgb": ("WRGB",)}


def command_counts(stream: list[Request]) -> dict[str, int]:
    """Counts in the published cache's columns (mac, softmax, mvgb, mvsb, wrgb)."""
    return _columns(Counter(name for name, _ in stream))


def attention_counts(case: AttentionCase) -> dict[str, int]:
    """The same counts without building the stream."""
    sink = _Counter()
    attention_stream(case, sink)
    return _columns(sink.counts)


def _columns(c: Counter) -> dict[str, int]:
    return {k: sum(c[n] for n in names) for k, names in COUNT_NAMES.items()}


def split_channels(stream: list[Request]) -> dict[int, list[Request]]:
    out: dict[int, list[Request]] = {}
    for req in stream:
        out.setdefault(req[1][0], []).append(req)
    return out
