"""Per-tile costs, traffic and buffer footprints of an attention plan on a spatial accelerator.

Cost conventions (the FuseMax artifact's Timeloop model, FPSG-UIUC/micro24-fusemax-artifact):

- 2D array (``rows`` keys x ``cols`` queries): a tile-level Einsum (p0 x m0 elements) takes its
  op's cycles once per tile (MACs: times the contracted extent E or F); a row-level Einsum
  (p0 elements) takes ``ceil(p0 / cols)`` op-cycles.
- 1D array (``cols`` PEs along the queries): a tile-level Einsum takes ``m0`` op-cycles per
  tile, a row-level one ``ceil(p0 / cols)`` (times F for per-value-column updates).
- Without interleaving query tiles (``interleaved=False``), a reduction down the 2D array's
  key dimension whose result the other array waits for drains through ``rows`` PEs: that
  stage stalls ``rows`` cycles (the artifact's StallProposal: LM x PE_dim).

Traffic (bytes, 16-bit words) follows from the plan: a 1-pass plan reads Q once, K and V once
per group of ``p1`` query tiles, writes AV once; FLAT re-reads Q once per key tile and K, V once
per query tile (output-stationary 2D tiles), and its score rows spill to DRAM in the fraction
that does not fit the buffer (7 spilled accesses per element: QK write, two softmax reads, SN
write and read, A write, AV read); the unfused baseline writes and reads QK and A through DRAM.
"""
from __future__ import annotations

import math

from accelsim.engines.spatial.cascade import Cascade, CascadeEinsum
from accelsim.engines.spatial.plan import AttentionPlan
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape


def softmax_ops(table: Cascade) -> tuple[tuple[str, int], ...]:
    """The 3-pass softmax, per score element: each non-MAC Einsum of the cascade once (GM max,
    SN exp, SD add, A div)."""
    return tuple((ce.op, 1) for ce in table.einsums.values() if ce.op != "mac")


def softmax_cycles_per_element(hw: SpatialAccelerator, table: Cascade) -> int:
    """1D op-cycles per score element of the 3-pass softmax.

    One cycle per Einsum with FLAT's dedicated exp unit (4 in all): the subtraction in
    ``exp(QK - GM)`` is folded into the exp pipeline. This is the FuseMax artifact's convention
    for its FLAT and unfused baselines (StableSoftmax sums one Timeloop pass per Einsum; its
    "add + exp" cost only enters energy). Counting the subtraction as its own cycle would make
    FLAT 25% slower where its 1D array is the bottleneck.
    """
    return sum(hw.array_1d.cost(op).cycles * k for op, k in softmax_ops(table))


def exp_diff_cycles(array) -> int:
    """Cycles of ``exp(a - b)`` in the 1-pass cascade (SLN, PRM): FuseMax's MAC-datapath exp
    (6 MAC + 1 add) includes the subtraction as its add; a dedicated exp unit needs a separate
    subtraction first (the artifact's 1-pass-on-FLAT costs: add 1 + exp 1)."""
    exp = array.cost("exp")
    return exp.cycles + (0 if "add" in exp.actions else array.cost("sub").cycles)



# --- per-tile costs ------------------------------------------------------------------------
def einsum_cycles(ce: CascadeEinsum, unit: str, hw: SpatialAccelerator, s: AttentionShape, p0: int, m0: int) -> int:
    """Cycles one tile's instance of a 1-pass Einsum takes on ``unit`` (``2d`` or ``1d``)."""
    op, level = ce.op, ce.level
    array = hw.array_2d if unit == "2d" else hw.array_1d
    per_op = exp_diff_cycles(array) if op == "exp" else array.cost(op).cycles
    k = ce.factor(s)
    if unit == "2d":
        if level == "tile":
            steps = math.ceil(p0 / array.cols) * math.ceil(m0 / array.rows)
        else:
            steps = math.ceil(p0 / array.cols)
    else:
        steps = (m0 if level == "tile" else 1) * math.ceil(p0 / array.cols)
    return steps * per_op * k


def einsum_elements(ce: CascadeEinsum, s: AttentionShape, p0: int, m0: int) -> int:
    """Elements (ops) one tile's instance performs, for energy and useful-work counts."""
    return (p0 * m0 if ce.level == "tile" else p0) * ce.factor(s)


def useful_elements(ce: CascadeEinsum, s: AttentionShape, n_mt: int) -> int:
    """Real (unpadded) ops of one (b, h) instance of a 1-pass Einsum."""
    k = ce.factor(s)
    if ce.level == "tile":
        return s.p * s.m * k
    if ce.level == "row":
        return s.p * n_mt * k  # once per key tile
    return s.p * k




def stage_cycles(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, p0: int | None = None,
                 m0: int | None = None) -> list[dict[str, int]]:
    """Per stage, the cycles each array is busy in one steady-state tile (AV excluded: it runs
    once per query tile), plus the drain stall of non-interleaved 2D reductions."""
    p0 = p0 or plan.p0
    m0 = m0 or plan.m0
    c = plan.cascade_table
    n = len(plan.stages)
    pos = {e: i + (n if e in plan.deferred else 0) for i, st in enumerate(plan.stages) for e in st}
    out = []
    for st in plan.stages:
        cyc = {"2d": 0, "1d": 0, "stall": 0}
        for e in st:
            if e == c.final:
                continue
            unit = plan.binding[e]
            cyc[unit] += einsum_cycles(c.einsums[e], unit, hw, s, p0, m0)
            if (not plan.interleaved and unit == "2d" and e in c.m0_reductions
                    and any(plan.binding[x] == "1d" and pos[x] > pos[e] and pos[x] < n
                            for x in c.deps.get(e, ()))):
                cyc["stall"] += hw.array_2d.rows
        out.append(cyc)
    return out


# --- traffic and buffer --------------------------------------------------------------------
def staged_tile_tensors(plan: AttentionPlan) -> int:
    """Tile-sized tensors produced on one array and consumed on the other (staged in the buffer)."""
    c = plan.cascade_table
    return sum(1 for t in c.tile_tensors if any(plan.binding[x] != plan.binding[t] for x in c.deps[t]))


def one_pass_buffer_bytes(plan: AttentionPlan, s: AttentionShape, word: int, p1: int | None = None) -> int:
    """Global-buffer footprint of a 1-pass plan: per held query its Q row and running state
    (RM, RD, RNV) plus double-buffered staging of every tile tensor crossing arrays, and one
    K and one V tile."""
    p1 = plan.p1 if p1 is None else p1
    per_query = (s.e + 1 + 1 + s.f + 2 * staged_tile_tensors(plan) * plan.m0) * word
    return p1 * plan.p0 * per_query + plan.m0 * (s.e + s.f) * word


def one_pass_stream_buffer_bytes(plan: AttentionPlan, s: AttentionShape, word: int, p1: int | None = None) -> int:
    """Buffer bytes with which the simulated stream (``_one_pass_stream``) never waits for space:
    the group's running state, its Q rows and the next group's (prefetched during the current
    group's last key tiles), and two K/V tiles (the one in use and the next, prefetching). This
    is ``one_pass_buffer_bytes`` (the artifact's footprint, no prefetch room) plus one more Q
    group and one more K/V tile; the optimizer constrains its plans with it."""
    p1 = plan.p1 if p1 is None else p1
    return one_pass_buffer_bytes(plan, s, word, p1) + p1 * plan.p0 * s.e * word + plan.m0 * (s.e + s.f) * word


def flat_row_bytes(plan: AttentionPlan, s: AttentionShape, hw: SpatialAccelerator) -> int:
    """FLAT's fused working set: the score rows of one block plus the 2D array's double-buffered
    output tile."""
    return plan.p1 * s.m * hw.word_bytes + 2 * hw.array_2d.rows * hw.array_2d.cols * hw.word_bytes


def three_pass_min_buffer_bytes(plan: AttentionPlan, s: AttentionShape, hw: SpatialAccelerator) -> int:
    """The 3-pass designs' working set that cannot spill to DRAM: the 2D array's double-buffered
    output tile (FLAT's 256 KiB on flat-cloud) and one Q tile and one K/V tile feeding it. Score
    rows beyond the buffer spill (``flat_spill_fraction``); these cannot."""
    w = hw.word_bytes
    return 2 * hw.array_2d.rows * hw.array_2d.cols * w + plan.p0 * s.e * w + plan.m0 * (s.e + s.f) * w


def flat_spill_fraction(plan: AttentionPlan, s: AttentionShape, hw: SpatialAccelerator) -> float:
    need = flat_row_bytes(plan, s, hw)
    return max(0.0, 1.0 - hw.buffer_bytes / need)


def traffic_bytes(plan: AttentionPlan, s: AttentionShape, hw: SpatialAccelerator) -> dict[str, float]:
    """DRAM bytes per tensor for the whole layer."""
    w = hw.word_bytes
    bh = s.b * s.h
    q, k, v, av = (bh * s.p * s.e * w, bh * s.m * s.e * w, bh * s.m * s.f * w, bh * s.p * s.f * w)
    scores = bh * s.m * s.p * w
    n_pt = math.ceil(s.p / plan.p0)
    n_mt = math.ceil(s.m / plan.m0)
    if plan.cascade == "1pass":
        passes = math.ceil(n_pt / plan.p1)
        return {"Q": q, "K": k * passes, "V": v * passes, "AV": av}
    if not plan.fused:
        return {"Q": q, "K": k, "V": v, "AV": av, "QK": 2 * scores, "A": 2 * scores}
    if plan.qk_onchip:
        spill = flat_spill_fraction(plan, s, hw)
        return {"Q": q * n_mt, "K": k * n_pt, "V": v * n_pt, "AV": av, "spill": 7 * spill * scores}
    blocks = math.ceil(s.p / plan.p1)
    return {"Q": q, "K": k * blocks, "V": v * blocks, "AV": av, "QK": 2 * scores, "A": 2 * scores}

