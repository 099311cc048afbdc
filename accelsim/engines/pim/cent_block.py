"""One Llama transformer block on one CENT device, as CENT's trace generator lays it out, timed from
aim_simulator's rules: what CENT's recorded per-block "PIM latency" covers beyond the weight GEMVs.

Why: CENT (Yufeng98/CENT cent_simulation/run_sim.py, commit 863bd7d, ``load_data_point``) records as
"PIM latency" the whole ramulator run (``memory_system_cycles`` / 2 GHz) of the *model-parallel* trace,
the device that holds the block's attention plus its 1/tp share of the FC layers. Its trace generator
(``trace_only`` of the Llama block; read in the Morteza1814/CENT fork, commit 3a05842, because the
upstream file is not in the index) emits, per block, in order:

- RMSNorm on PIM: the input written to neighbouring banks (single-bank ``W MEM`` lines), one all-bank
  MAC of x with itself (WR_BIAS, MAC_ABK, RD_MAC), the norm scalar broadcast back (``W MEM``), EWMUL,
  four COPY_BKGB / COPY_GBBK pairs, EWMUL, the result read (``R MEM``), SYNC;
- the q, k, v GEMVs (``--GEMV reuse-GB``: per 1024-word chunk one WR_GB, then per group of 32 neurons
  WR_BIAS x n, MAC_ABK x n, RD_MAC x n), then RoPE as stores + EWMUL + stores;
- attention of *every* head on this device (intra-device attention, the default): the new key written
  to one bank (``W MEM``), the new value by WR_ABK per (head, 16-dim slice); the score GEMV q.K^T with
  the keys one token per bank (per 1024-word row of q: WR_GB, then per head in the row WR_BIAS,
  MAC_ABK of head_dim / 16 columns, RD_MAC); softmax scaling as score stores, EWMUL, score reads, SYNC,
  twice (exp and sum on the CXL controller's PNM units, costed outside "PIM latency"); the context
  GEMV with V stored dim-major (per head and 1024-token row: WR_GB, then per 16-dim slice WR_BIAS,
  MAC_ABK, RD_MAC);
- the o GEMV, EWADD, the second RMSNorm, the gate GEMV with its activation (AF and RD_AF per neuron in
  the last chunk, groups of 16), the up GEMV, SiLU x up as stores + EWMUL + copies, down GEMV, EWADD.

Terms here (each from a cited rule, nothing fitted):
- ``gemv_s``: the seven weight GEMVs in CENT's loop order (``gb_gemv`` "keep": one buffer fill per
  chunk, MAC registers read every chunk), command-level;
- ``attention_s``: the score and context GEMVs above, command-level (this module's request streams);
- ``dma_issue_s``: the single-bank host requests (``W MEM`` / ``R MEM`` vector lines, SYNC, EWADD) pass
  the AiM DMA one per memory-system cycle (``dma_requests_per_cycle``), in order: a lower bound on the
  time those sections take;
- ``kv_store_s``: the new key (its rows into one bank: writes tCCDL apart, rows tRC apart) and value
  (a channel's WR_ABKs each open a new row in all its banks: tRC apart), or the DMA bound if larger;
- ``elementwise_s``: per EWMUL, COPY_BKGB, COPY_GBBK ISR its activate-to-command latency + op size x
  tCCDL + tRTP + tRP (a fresh row; EWMULs also >= tRC apart), per AF ISR nRCDRDAF: lower bounds (aim_simulator GDDR6.cpp
  timings; the source's full command sequences are not reproduced);
- ``wr_bias_s``: each WR_BIAS (a register write over the channel bus) at least tBL.
WR_BIAS and the element-wise ISRs are not in the channel simulator's command set, so they are added
serially (the DMA cannot decode past a blocking RD_MAC or SYNC, aim_simulator request.h).
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.engines.pim.channel_sim import BARRIER, Request, simulate_channel
from accelsim.engines.pim.gb_gemv import GbGemv, gb_gemv_cycles
from accelsim.errors import AccelsimError
from accelsim.hardware.pim import PimSpec

ALL = (0, -1, -1, -1, -1, -1)
ELEMENTWISE_TIMING = {"EWMUL": "tRCDEWMUL", "COPY_BKGB": "tRCDRDCP", "COPY_GBBK": "tRCDWRCP", "AF": "tRCDRDAF"}


@dataclass(frozen=True)
class CentBlock:
    """A Llama block as CENT maps it on one device of ``channels`` x ``banks`` (model parallel, tp devices)."""

    dim: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    seqlen: int
    tp: int
    head_dim: int = 128
    channels: int = 32
    banks: int = 16
    row_words: int = 1024   # AiM org: 1K columns x 16 bit (CENT's DRAM_column)
    burst_words: int = 16   # 256-bit access = 16 BF16 (CENT's burst_length)
    reuse_size: int = 32    # run_sim.py --reuse_size default

    def __post_init__(self) -> None:
        for name in ("dim", "n_heads", "n_kv_heads", "ffn_dim", "seqlen", "tp", "head_dim", "channels", "banks",
                     "row_words", "burst_words", "reuse_size"):
            if getattr(self, name) < 1:
                raise AccelsimError(f"must be >= 1, got {getattr(self, name)}", field=name)
        if self.n_heads % self.n_kv_heads:
            raise AccelsimError(f"{self.n_kv_heads} kv heads do not divide {self.n_heads} heads", field="n_kv_heads")
        if self.head_dim % self.burst_words or self.head_dim % self.banks or self.row_words % self.head_dim:
            raise AccelsimError(f"head_dim {self.head_dim} must be whole bursts and bank slices and divide the "
                                f"{self.row_words}-word row", field="head_dim")
        if self.n_kv_heads * self.head_dim % self.row_words:
            raise AccelsimError("CENT stores a token's keys in whole rows: n_kv_heads x head_dim must be a multiple "
                                f"of {self.row_words}", field="n_kv_heads")
        if self.seqlen > self.row_words:
            raise AccelsimError(f"seqlen {self.seqlen}: only contexts of one V row ({self.row_words} tokens) are "
                                "modelled", field="seqlen", allowed=f"1..{self.row_words}")
        if self.ffn_dim > self.channels * self.banks // 4 * self.row_words:
            raise AccelsimError("the activation's two-pass branch (ffn_dim > one bank-group row per bank) is not "
                                "modelled", field="ffn_dim")

    @property
    def total_banks(self) -> int:
        return self.channels * self.banks

    @property
    def fc_banks(self) -> int:
        return self.total_banks * self.tp

    @property
    def n_repeat(self) -> int:
        return self.n_heads // self.n_kv_heads

    def gemvs(self) -> list[tuple[str, int, int, bool]]:
        """(name, reduction k, outputs n, with activation) of the weight GEMVs, in trace order."""
        d, kv = self.dim, self.head_dim * self.n_kv_heads
        return [("q", d, self.head_dim * self.n_heads, False), ("k", d, kv, False), ("v", d, kv, False),
                ("o", d, d, False), ("gate", d, self.ffn_dim, True), ("up", d, self.ffn_dim, False),
                ("down", self.ffn_dim, d, False)]


def _bursts(words: int, burst_words: int) -> int:
    return (words - 1) // burst_words + 1


def _fill(bursts: int) -> list[Request]:
    return [("WRGB", ALL)] * bursts + [(BARRIER, ALL)]


def _mac_read(row: int, columns: int) -> list[Request]:
    """MACs into register 0 then its read-out; the next MAC reuses the register, so barriers."""
    return [("MACAB", (0, -1, -1, -1, -1, row))] * columns + [(BARRIER, ALL), ("RDMAC", ALL), (BARRIER, ALL)]


def score_requests(b: CentBlock) -> list[Request]:
    """q.K^T on one channel: keys one token per bank over every device's banks, a token's keys of all kv
    heads over ``rows_per_vector`` rows; per row of q one fill, then one MAC group per head in the row."""
    rows_per_vector = b.n_kv_heads * b.head_dim // b.row_words
    seq_iterations = (b.seqlen - 1) // b.fc_banks + 1
    heads_per_row = b.row_words // b.head_dim
    reqs: list[Request] = []
    for r in range(rows_per_vector):
        for s in range(seq_iterations):
            for _ in range(b.n_repeat):
                reqs += _fill(b.row_words // b.burst_words)
                for _ in range(heads_per_row):
                    reqs += _mac_read(s * rows_per_vector + r, b.head_dim // b.burst_words)
    return reqs


def context_requests(b: CentBlock) -> list[Request]:
    """scores.V on the busiest channel: a channel holds ceil(n_kv_heads / channels) heads, V dim-major
    (16 dims per slice over the 16 banks, tokens along the row); per head one fill of the scores, then one
    MAC group per 16-dim slice, each slice in its own row."""
    heads_per_channel = (b.n_kv_heads - 1) // b.channels + 1
    slices = b.head_dim // b.banks
    columns = _bursts(b.seqlen, b.burst_words)
    base = 1 << 12  # rows apart from the key rows
    reqs: list[Request] = []
    for h in range(heads_per_channel):
        for _ in range(b.n_repeat):
            reqs += _fill(columns)
            for d in range(slices):
                reqs += _mac_read(base + h * slices + d, columns)
    return reqs


def _vector_lines(length: int, banks: int, burst_words: int) -> int:
    return _bursts(length, burst_words) * banks


def _spread(n: int, parts: int) -> tuple[int, int]:
    """CENT's split of n words over ``parts`` banks: (words per bank, banks used)."""
    per = (n - 1) // parts + 1
    return per, (n - 1) // per + 1


def instruction_counts(b: CentBlock) -> dict[str, list[int]]:
    """The block's non-GEMV instructions on this device, as CENT's ``trace_only`` emits them: for each kind
    the op sizes (bursts) of its instructions ("MEM": single-bank W/R lines, one burst each)."""
    bl = b.burst_words
    out: dict[str, list[int]] = {k: [] for k in ("MEM", "WR_ABK", "EWMUL", "COPY_BKGB", "COPY_GBBK", "AF", "RD_AF",
                                                 "WR_BIAS", "MAC_ABK", "RD_MAC", "SYNC", "EWADD", "KEY")}

    def lines(n: int) -> None:
        out["MEM"] += [1] * n

    nb_len, nb_banks = _spread(b.dim, b.total_banks // 2)
    ew_len, ew_banks = _spread(b.dim, b.total_banks // 4)

    def rmsnorm() -> None:
        lines(2 * _vector_lines(nb_len, nb_banks, bl))            # x to neighbouring banks, twice
        out["WR_BIAS"].append(1)
        out["MAC_ABK"].append(_bursts(nb_len, bl))                # sum of squares
        out["RD_MAC"].append(1)
        lines(2 * _vector_lines(ew_len, ew_banks, bl))            # norm scalar broadcast for EWMUL
        out["EWMUL"].append(_bursts(ew_len, bl))
        out["COPY_BKGB"] += [_bursts(ew_len, bl)] * (b.banks // 4)
        out["COPY_GBBK"] += [_bursts(ew_len, bl)] * (b.banks // 4)
        out["EWMUL"].append(_bursts(ew_len, bl))
        lines(_vector_lines(ew_len, ew_banks, bl))                # result read
        out["SYNC"].append(1)

    rmsnorm()
    # RoPE: q and k written re-mapped, EWMUL, written again (CENT emits stores for the "load")
    q_lines = _vector_lines(ew_len * 2, ew_banks, bl)
    k_lines = _vector_lines(ew_len // b.n_repeat * 2, ew_banks, bl)
    lines(2 * (q_lines + k_lines))
    out["EWMUL"] += [b.dim // bl, b.dim // b.n_repeat // bl]
    # new key: one token's keys into one bank, whole rows (timed apart: bank-serial, see block_terms)
    out["KEY"] = [1] * (b.head_dim * b.n_kv_heads // b.row_words * (b.row_words // bl))
    # new value: one WR_ABK per (head, 16-dim slice), single-channel instructions
    heads_per_channel = (b.n_kv_heads - 1) // b.channels + 1
    for hpb in range(heads_per_channel):
        used = sum(1 for ch in range(b.channels) if ch * heads_per_channel + hpb <= b.n_kv_heads - 1)
        out["WR_ABK"] += [1] * (used * (b.head_dim // b.banks))
    # score GEMV instruction lines (its commands are in score_requests)
    rows_per_vector = b.n_kv_heads * b.head_dim // b.row_words
    score_groups = rows_per_vector * ((b.seqlen - 1) // b.fc_banks + 1) * b.n_repeat
    out["WR_BIAS"] += [1] * (score_groups * (b.row_words // b.head_dim))
    # softmax scaling, twice: scores to banks of bank groups 0 and 1, EWMUL per score row, read back, SYNC
    heads_per_bank = (b.n_heads - 1) // (b.total_banks // 4) + 1
    for _ in range(2):
        for bg_pass in range(3):   # stores to bank groups 0, 1, then the read from bank group 2
            for j in range(heads_per_bank):
                heads = sum(1 for bank in range(0, b.total_banks, 4) if (bank // 4) * heads_per_bank + j < b.n_heads)
                lines(_bursts(b.seqlen, bl) * heads)
            if bg_pass == 1:
                out["EWMUL"] += [_bursts(b.seqlen, bl)] * heads_per_bank
        out["SYNC"].append(1)
    # context GEMV WR_BIAS (commands in context_requests)
    out["WR_BIAS"] += [1] * (heads_per_channel * b.n_repeat * (b.head_dim // b.banks))
    out["EWADD"].append(1)
    rmsnorm()
    # gate activation: AF + RD_AF per neuron of the last chunk (counted with the GEMV, see gemv_instructions)
    # SiLU(gate) x up: stores, EWMUL, copies, store, EWMUL, read, SYNC
    f_len, f_banks = _spread(b.ffn_dim, b.total_banks // 4)
    f_bursts = _bursts(f_len, bl)
    lines(2 * _vector_lines(f_len, f_banks, bl))
    out["EWMUL"].append(f_bursts)
    out["COPY_BKGB"] += [f_bursts] * (b.banks // 4)
    out["COPY_GBBK"] += [f_bursts] * (b.banks // 4)
    lines(_vector_lines(f_len, f_banks, bl))
    out["EWMUL"].append(f_bursts)
    lines(_vector_lines(f_len, f_banks, bl))
    out["SYNC"].append(1)
    out["EWADD"].append(1)
    return out


def gemv_streams(b: CentBlock, hw: PimSpec) -> list[tuple[str, GbGemv, bool]]:
    """The weight GEMVs' per-channel streams in CENT's layout (neurons dealt over every device's banks)."""
    std = hw.dram
    out = []
    for name, k, n, af in b.gemvs():
        registers = b.reuse_size // 2 if af else b.reuse_size
        out.append((name, GbGemv(k, (n - 1) // b.fc_banks + 1, hw.dtype_bytes, hw.global_buffer_bytes or 0,
                                 registers, std.row_bytes, std.access_bytes), af))
    return out


def gemv_instructions(b: CentBlock, hw: PimSpec) -> dict[str, int]:
    """WR_BIAS, AF and RD_AF the GEMVs add (one WR_BIAS per neuron and chunk; AF + RD_AF per gate neuron)."""
    wr_bias = af = 0
    for _, g, with_af in gemv_streams(b, hw):
        wr_bias += g.neurons * g.chunks
        af += g.neurons if with_af else 0
    return {"WR_BIAS": wr_bias, "AF": af, "RD_AF": af}


def value_rows_per_channel(b: CentBlock) -> int:
    """WR_ABKs of the busiest channel for the new value: one per (head it holds, 16-dim slice)."""
    return ((b.n_kv_heads - 1) // b.channels + 1) * (b.head_dim // b.banks)


def _need(t: dict[str, int], name: str) -> int:
    if name not in t:
        raise AccelsimError(f"timing {name} is needed for CENT's element-wise instructions", field=f"timings.{name}",
                            allowed=sorted(t))
    return t[name]


def block_terms(b: CentBlock, hw: PimSpec) -> dict[str, float]:
    """Seconds per term (module docstring) for one block on the attention device."""
    if hw.global_buffer_bytes is None or hw.mac_registers_per_bank is None:
        raise AccelsimError(f"{hw.name} has no global buffer; CENT's block needs one", field="global_buffer_bytes")
    if hw.dma_requests_per_cycle is None:
        raise AccelsimError(f"{hw.name} does not say how fast its PIM DMA decodes instructions",
                            field="dma_requests_per_cycle", allowed="a positive number per tCK")
    std = hw.dram
    t = hw.timings()
    tkey, okey = tuple(sorted(t.items())), tuple(sorted(std.organization.items()))
    gemv_cycles = sum(gb_gemv_cycles(g, "keep", tkey, okey)[0] for _, g, _ in gemv_streams(b, hw))
    attention_cycles = (simulate_channel(score_requests(b), t, std.organization).cycles
                        + simulate_channel(context_requests(b), t, std.organization).cycles)
    counts = instruction_counts(b)
    extra = gemv_instructions(b, hw)
    # lines timed by nothing else: single-bank W/R lines, single-channel WR_ABK, SYNC, EWADD (decoded, no
    # DRAM command); the GEMV, attention and element-wise instructions' decode overlaps their own commands
    issue_lines = sum(len(counts[k]) for k in ("MEM", "SYNC", "EWADD"))
    rate = hw.dma_requests_per_cycle
    # the new K and V: the key's rows go to one bank (writes tCCDL apart, rows tRC apart); each WR_ABK opens a
    # new row in every bank of its channel, so a channel's WR_ABKs are tRC apart; the DMA bound if larger
    key_rows = b.head_dim * b.n_kv_heads // b.row_words
    key_cycles = max(len(counts["KEY"]) / rate, key_rows * max(t["tRC"], b.row_words // b.burst_words * t["tCCDL"]))
    value_cycles = max(len(counts["WR_ABK"]) / rate, value_rows_per_channel(b) * t["tRC"])
    elementwise = 0
    for kind, timing in ELEMENTWISE_TIMING.items():
        sizes = counts[kind] + ([0] * extra["AF"] if kind == "AF" else [])
        per_row = _need(t, timing)
        if kind == "AF":
            elementwise += per_row * len(sizes)
        else:
            # a fresh row: activate-to-command, the columns, tRTP + tRP to close; EWMUL reuses the same banks
            # (0, 1, 2 of every bank group) instruction after instruction, so also >= tRC apart
            floor = t["tRC"] if kind == "EWMUL" else 0
            elementwise += sum(max(floor, per_row + s * t["tCCDL"] + t["tRTPL"] + t["tRP"]) for s in sizes)
    wr_bias = (len(counts["WR_BIAS"]) + extra["WR_BIAS"]) * t["tBL"]
    tck = std.tck_s
    return {"gemv_s": gemv_cycles * tck, "attention_s": attention_cycles * tck,
            "dma_issue_s": issue_lines / rate * tck, "kv_store_s": (key_cycles + value_cycles) * tck,
            "elementwise_s": elementwise * tck,
            "wr_bias_s": wr_bias * tck}
