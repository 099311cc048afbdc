"""Attention on a spatial accelerator (2D + 1D PE arrays, global buffer, DRAM), simulated tile by tile.

A design is an ``AttentionPlan``: which cascade runs (1-pass for FuseMax and its ablations,
3-pass for FLAT and the unfused baseline), the tile sizes (``p0`` queries x ``m0`` keys), how
many query tiles share one pass over K and V (``p1``), the binding of each Einsum to the 2D or
1D array, and the static per-tile schedule (stages). ``simulate`` turns the plan into tile-level
tasks on three units (``2d``, ``1d``, ``dram``) and runs them through ``accelsim.engines.events``,
so latency comes out of the overlap of the arrays, the DRAM stream and the buffer, not out of a
sum of costs.

Cost conventions (the FuseMax artifact's Timeloop model, FPSG-UIUC/micro24-fusemax-artifact):

- 2D array (``rows`` keys x ``cols`` queries): a tile-level Einsum (p0 x m0 elements) takes its
  op's cycles once per tile (MACs: times the contracted extent E or F); a row-level Einsum
  (p0 elements) takes ``ceil(p0 / cols)`` op-cycles.
- 1D array (``cols`` PEs along the queries): a tile-level Einsum takes ``m0`` op-cycles per
  tile, a row-level one ``ceil(p0 / cols)`` (times F for per-value-column updates).
- Stages: the tasks of one stage on the two arrays run concurrently; a stage starts when both
  arrays finished the previous one (a statically scheduled lock-step pipeline). Einsums marked
  deferred run in the next tile's stages (FuseMax overlaps RD/RNV of tile t with QK of t+1).
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
from dataclasses import dataclass, field, replace

from accelsim.engines.events import Task, extrapolate, run
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.report import Report
from accelsim.ir.views import AttentionShape

# --- the 1-pass cascade, per tile --------------------------------------------------------
# name -> (op, level, contracted rank or None). level: "tile" (p0 x m0 elements), "row" (p0
# elements, per key tile), "final" (p0 elements, once per query tile after the last key tile).
ONE_PASS_EINSUMS: dict[str, tuple[str, str, str | None]] = {
    "QK": ("mac", "tile", "e"),
    "LM": ("max", "tile", None),
    "RM": ("max", "row", None),
    "SLN": ("exp", "tile", None),
    "PRM": ("exp", "row", None),
    "SPD": ("mul", "row", None),
    "SLD": ("add", "tile", None),
    "RD": ("add", "row", None),
    "SLNV": ("mac", "tile", "f"),
    "SPNV": ("mul", "row", "f"),
    "RNV": ("add", "row", "f"),
    "AV": ("div", "final", "f"),
}
# producer -> consumers within one tile (the cascade's data dependences)
ONE_PASS_DEPS: dict[str, tuple[str, ...]] = {
    "QK": ("LM", "SLN"), "LM": ("RM",), "RM": ("SLN", "PRM"), "SLN": ("SLD", "SLNV"),
    "PRM": ("SPD", "SPNV"), "SPD": ("RD",), "SLD": ("RD",), "SLNV": ("RNV",), "SPNV": ("RNV",),
    "RD": ("AV",), "RNV": ("AV",),
}
# Einsums reducing over the key rank m0 (a column reduction when on the 2D array)
M0_REDUCTIONS = {"LM", "SLD", "SLNV"}
# A consumer may accumulate its producer's results as they stream out, in the same stage
STREAMING = {("SLNV", "RNV")}
TILE_TENSORS = {"QK", "SLN"}  # tile-sized outputs; crossing arrays means staging in the buffer

# 3-pass softmax on the 1D array, per score element: GM (max), SN = exp(QK - GM), SD (add), A (div)
SOFTMAX_OPS = (("max", 1), ("exp", 1), ("add", 1), ("div", 1))


def softmax_cycles_per_element(hw: SpatialAccelerator) -> int:
    """1D op-cycles per score element of the 3-pass softmax.

    One cycle per Einsum with FLAT's dedicated exp unit (4 in all): the subtraction in
    ``exp(QK - GM)`` is folded into the exp pipeline. This is the FuseMax artifact's convention
    for its FLAT and unfused baselines (StableSoftmax sums one Timeloop pass per Einsum; its
    "add + exp" cost only enters energy). Counting the subtraction as its own cycle would make
    FLAT 25% slower where its 1D array is the bottleneck.
    """
    return sum(hw.array_1d.cost(op).cycles * k for op, k in SOFTMAX_OPS)


def exp_diff_cycles(array) -> int:
    """Cycles of ``exp(a - b)`` in the 1-pass cascade (SLN, PRM): FuseMax's MAC-datapath exp
    (6 MAC + 1 add) includes the subtraction as its add; a dedicated exp unit needs a separate
    subtraction first (the artifact's 1-pass-on-FLAT costs: add 1 + exp 1)."""
    exp = array.cost("exp")
    return exp.cycles + (0 if "add" in exp.actions else array.cost("sub").cycles)


@dataclass(frozen=True)
class AttentionPlan:
    """How one attention layer runs: design label, cascade, tiling, binding and schedule."""

    design: str
    cascade: str  # "1pass" or "3pass"
    p0: int
    m0: int
    p1: int = 1  # 1-pass: query tiles per K/V pass; FLAT: queries per fused row block
    binding: dict[str, str] = field(default_factory=dict)
    stages: tuple[tuple[str, ...], ...] = ()
    deferred: frozenset[str] = frozenset()
    interleaved: bool = True
    qk_onchip: bool = True  # 3-pass: FLAT keeps score rows on chip (spilling overflow)
    fused: bool = True  # 3-pass: False = unfused baseline (QK and A through DRAM)

    def describe(self) -> dict:
        return {"design": self.design, "cascade": self.cascade, "p0": self.p0, "m0": self.m0, "p1": self.p1,
                "binding": dict(self.binding), "stages": [list(s) for s in self.stages],
                "deferred": sorted(self.deferred), "interleaved": self.interleaved,
                "qk_onchip": self.qk_onchip, "fused": self.fused}


# --- per-tile costs ------------------------------------------------------------------------
def einsum_cycles(name: str, unit: str, hw: SpatialAccelerator, s: AttentionShape, p0: int, m0: int) -> int:
    """Cycles one tile's instance of a 1-pass Einsum takes on ``unit`` (``2d`` or ``1d``)."""
    op, level, contracted = ONE_PASS_EINSUMS[name]
    array = hw.array_2d if unit == "2d" else hw.array_1d
    per_op = exp_diff_cycles(array) if op == "exp" else array.cost(op).cycles
    k = {"e": s.e, "f": s.f, None: 1}[contracted]
    if unit == "2d":
        if level == "tile":
            steps = math.ceil(p0 / array.cols) * math.ceil(m0 / array.rows)
        else:
            steps = math.ceil(p0 / array.cols)
    else:
        steps = (m0 if level == "tile" else 1) * math.ceil(p0 / array.cols)
    return steps * per_op * k


def einsum_elements(name: str, s: AttentionShape, p0: int, m0: int) -> int:
    """Elements (ops) one tile's instance performs, for energy and useful-work counts."""
    op, level, contracted = ONE_PASS_EINSUMS[name]
    k = {"e": s.e, "f": s.f, None: 1}[contracted]
    return (p0 * m0 if level == "tile" else p0) * k


def check_schedule(plan: AttentionPlan) -> None:
    """Every Einsum placed once; producers before consumers (same array: same or earlier
    stage; other array: earlier stage unless streaming); deferred ones only feed the next tile."""
    placed = [e for st in plan.stages for e in st]
    missing = set(ONE_PASS_EINSUMS) - set(placed)
    extra = [e for e in placed if placed.count(e) > 1 or e not in ONE_PASS_EINSUMS]
    if missing or extra:
        raise AccelsimError(f"schedule must place each 1-pass Einsum once (missing {sorted(missing)}, "
                            f"bad {sorted(set(extra))})", field="plan.stages", allowed=list(ONE_PASS_EINSUMS))
    n = len(plan.stages)
    pos = {e: i + (n if e in plan.deferred else 0) for i, st in enumerate(plan.stages) for e in st}
    for prod, cons in ONE_PASS_DEPS.items():
        for c in cons:
            same = plan.binding[prod] == plan.binding[c]
            ok = pos[prod] <= pos[c] if (same or (prod, c) in STREAMING) else pos[prod] < pos[c]
            if ok and same and pos[prod] == pos[c]:
                st = plan.stages[pos[c] % n]
                ok = st.index(prod) < st.index(c)
            if not ok:
                raise AccelsimError(f"{c} reads {prod} before it is produced", field="plan.stages")
    for e in plan.deferred:
        if e not in {"RD", "RNV", "AV"}:
            raise AccelsimError(f"only the state updates RD, RNV and AV may be deferred, got {e}",
                                field="plan.deferred", allowed=["RD", "RNV", "AV"])


def stage_cycles(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, p0: int | None = None,
                 m0: int | None = None) -> list[dict[str, int]]:
    """Per stage, the cycles each array is busy in one steady-state tile (AV excluded: it runs
    once per query tile), plus the drain stall of non-interleaved 2D reductions."""
    p0 = p0 or plan.p0
    m0 = m0 or plan.m0
    n = len(plan.stages)
    pos = {e: i + (n if e in plan.deferred else 0) for i, st in enumerate(plan.stages) for e in st}
    out = []
    for st in plan.stages:
        cyc = {"2d": 0, "1d": 0, "stall": 0}
        for e in st:
            if e == "AV":
                continue
            unit = plan.binding[e]
            cyc[unit] += einsum_cycles(e, unit, hw, s, p0, m0)
            if (not plan.interleaved and unit == "2d" and e in M0_REDUCTIONS
                    and any(plan.binding[c] == "1d" and pos[c] > pos[e] and pos[c] < n
                            for c in ONE_PASS_DEPS.get(e, ()))):
                cyc["stall"] += hw.array_2d.rows
        out.append(cyc)
    return out


# --- traffic and buffer --------------------------------------------------------------------
def staged_tile_tensors(plan: AttentionPlan) -> int:
    """Tile-sized tensors produced on one array and consumed on the other (staged in the buffer)."""
    return sum(1 for t in TILE_TENSORS
               if any(plan.binding[c] != plan.binding[t] for c in ONE_PASS_DEPS[t]))


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


# --- simulation ----------------------------------------------------------------------------
# Layers of up to this many tiles are simulated whole (~6,000 tiles/s on one core, so <= ~1.5 s); longer ones
# are extended from truncated streams (``_extrapolated_latency``).
FULL_SIM_MAX_TILES = 8192
UNIT_REPS = (2, 3)  # streams of this many group-units measure one unit's steady-state period
# key tiles per group at which truncated streams are measured, until the per-key-tile slope
# settles; beyond the last, extended linearly
KEY_TILE_REPS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
KEY_TILE_SETTLE = 8  # ... and at least this many (shorter streams can look settled and not be)
GROUPS_STREAMED_WHOLE = 8  # a layer of at most this many groups (any key tiles) is streamed whole
@dataclass
class SimResult:
    latency_cycles: float
    busy_cycles: dict[str, float]
    einsum_cycles: dict[str, float]
    traffic: dict[str, float]
    buffer_bytes_used: int
    buffer_bytes_needed: int
    actions: dict[str, float]
    spill_fraction: float = 0.0


def _dram_cycles(nbytes: float, hw: SpatialAccelerator) -> float:
    return nbytes / hw.dram.bytes_per_cycle(hw.clock_hz)


def _one_pass_stream(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                     groups: list[tuple[int, int]], n_kt: int, last_m0: int) -> float:
    """Makespan of consecutive groups, each ``(query tiles, size of its last query tile)``,
    every group sweeping ``n_kt`` key tiles (the last of ``last_m0`` keys).

    Buffer: the running state of ``p1`` query tiles is allocated for the whole stream (each
    group reuses it); a group's Q rows are loaded when space allows (so the next group's Q can
    prefetch during the current group) and freed after its last QK; each K/V tile is freed once
    the group's last query tile has used it. DRAM issues in order: a group's Q and K/V loads,
    then the previous group's AV store.
    """
    w = hw.word_bytes
    stages = stage_cycles(plan, hw, s)
    kv_tile = plan.m0 * (s.e + s.f) * w
    n_q_max = max(n for n, _ in groups)
    state_bytes = one_pass_buffer_bytes(replace(plan, p1=n_q_max), s, w) - kv_tile - n_q_max * plan.p0 * s.e * w
    av_unit = plan.binding["AV"]
    av_cycles = einsum_cycles("AV", av_unit, hw, s, plan.p0, plan.m0)
    qk_stage = next(i for i, st in enumerate(plan.stages) if "QK" in st)
    av_stage = next(i for i, st in enumerate(plan.stages) if "AV" in st)
    dram: list[Task] = []
    compute: list[Task] = [Task("state", "1d", 0, alloc_bytes=state_bytes)]
    prev_stage: list[Task] = [compute[0]]
    pending_av = 0
    prev_store: Task | None = None
    for g, (n_qt, last_p0) in enumerate(groups):
        q_bytes = ((n_qt - 1) * plan.p0 + last_p0) * s.e * w
        load_q = Task(f"g{g} load Q", "dram", _dram_cycles(q_bytes, hw), alloc_bytes=q_bytes)
        dram.append(load_q)
        last_qk: list[Task] = []
        for j in range(n_kt):
            real_m0 = last_m0 if j == n_kt - 1 else plan.m0
            ld = Task(f"g{g} load KV{j}", "dram", _dram_cycles(real_m0 * (s.e + s.f) * w, hw), alloc_bytes=kv_tile)
            dram.append(ld)
            for i in range(n_qt):
                for k, cyc in enumerate(stages):
                    deps = list(prev_stage) + ([ld, load_q] if k == qk_stage else [])
                    cur = []
                    for unit in ("2d", "1d"):
                        c = cyc[unit] + (cyc["stall"] if unit == "2d" else 0)
                        if k == av_stage and unit == av_unit and pending_av:
                            c += av_cycles  # one finished query tile's division per tile
                        if c:
                            cur.append(Task(f"g{g}.k{j}.q{i}.s{k}.{unit}", unit, c, deps=deps))
                    if k == av_stage:
                        pending_av = max(0, pending_av - 1)
                    if k == qk_stage and j == n_kt - 1:
                        last_qk = cur
                    compute += cur
                    prev_stage = cur or prev_stage
            compute.append(Task(f"g{g} free KV{j}", "1d", 0, deps=list(prev_stage), free_bytes=kv_tile))
        compute.append(Task(f"g{g} free Q", "1d", 0, deps=last_qk, free_bytes=q_bytes))
        pending_av += n_qt  # each finished query tile's AV division runs in a later tile's first stage
        if prev_store is not None:
            dram.append(prev_store)
        out_bytes = ((n_qt - 1) * plan.p0 + last_p0) * s.f * w
        prev_store = Task(f"g{g} store AV", "dram", _dram_cycles(out_bytes, hw), deps=list(prev_stage))
    tail = Task("AV tail", av_unit, av_cycles * pending_av, deps=list(prev_stage))
    compute.append(tail)
    prev_store.deps.append(tail)
    dram.append(prev_store)
    return run(dram + compute, ["2d", "1d", "dram"], buffer_bytes=hw.buffer_bytes).makespan_cycles


def _extrapolated_latency(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                          head: list[tuple[int, int]], n_units: int, n_mt: int, last_m0: int) -> float:
    """Latency of ``n_units`` heads from truncated streams (layers too long to simulate whole).

    A head is (n - 1) regular groups and a closing "mini-head" (the last full group and the
    remainder group). Layers of at most ``GROUPS_STREAMED_WHOLE`` groups are streamed whole;
    longer ones as a fill plus the steady-state time one more unit (a run of groups) adds,
    measured between streams of ``UNIT_REPS`` units. In key tiles per group, streams of growing
    length (``KEY_TILE_REPS``) are run until the per-key-tile slope is the same over three
    intervals past ``KEY_TILE_SETTLE`` tiles, then extended linearly.

    This is exact only if the stream is periodic from the measured window on. It is not in
    general: where DRAM and an array nearly balance, the makespan is a maximum of affine
    functions of the count whose slope can change after the window. The estimate is clamped to
    the exact lower bound (no unit busier than the run is long). Measured against full
    simulation (seeded random small layers, extrapolation forced): compute-bound <= 0.1%
    (``test_extrapolation_error_is_bounded`` holds it to 0.5%); DRAM-bound up to 7.5% on tiny
    layers. Hence layers up to ``FULL_SIM_MAX_TILES`` tiles are always simulated whole.
    """
    mini = head[-2:] if len(head) >= 2 and head[-1][0] != head[0][0] else head[-1:]
    n_regular = len(head) - len(mini)
    cache: dict = {}

    def stream(groups: tuple, c: int) -> float:
        key = (groups, c)
        if key not in cache:
            cache[key] = _one_pass_stream(plan, hw, s, list(groups), c, last_m0)
        return cache[key]

    lo, hi = UNIT_REPS

    def unit_period(unit: tuple, c: int) -> float:
        return (stream(unit * hi, c) - stream(unit * lo, c)) / (hi - lo)

    def in_key_tiles(f, n: int) -> float:
        """f(n) from f at growing key-tile counts: extend linearly once the slopes over the last
        three intervals agree (1e-9 relative) past ``KEY_TILE_SETTLE``, or from the largest
        count tried."""
        pts = [k for k in KEY_TILE_REPS if k < n] + [n]
        slopes: list[float] = []
        for k0, k1 in zip(pts, pts[1:]):
            if k1 == n:
                return f(n)
            slopes.append((f(k1) - f(k0)) / (k1 - k0))
            last = slopes[-3:]
            if k1 >= KEY_TILE_SETTLE and len(last) == 3 and max(last) - min(last) <= 1e-9 * abs(last[-1]):
                break
        if len(pts) < 2:
            return f(n)
        return f(k1) + (n - k1) * slopes[-1]

    regular, mini_t = (head[0],), tuple(mini)

    def layer(c: int) -> float:
        """The whole layer with ``c`` key tiles per group: short group sequences streamed whole,
        long ones as a fill plus per-unit steady-state periods."""
        if n_units * len(head) <= GROUPS_STREAMED_WHOLE:
            return stream(tuple(head * n_units), c)
        p_reg = unit_period(regular, c) if n_regular else 0.0
        p_mini = unit_period(mini_t, c)
        fill = stream(mini_t * lo, c) - lo * p_mini
        return n_units * (n_regular * p_reg + p_mini) + fill

    return in_key_tiles(layer, n_mt)


def _simulate_one_pass(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
                       full_sim_max_tiles: int | None = None) -> SimResult:
    full_sim_max_tiles = FULL_SIM_MAX_TILES if full_sim_max_tiles is None else full_sim_max_tiles
    check_schedule(plan)
    if plan.p0 > hw.array_2d.cols or plan.m0 > hw.array_2d.rows:
        raise AccelsimError(f"tile {plan.p0}x{plan.m0} exceeds the {hw.array_2d.rows}x{hw.array_2d.cols} array",
                            field="plan.p0/m0")
    w = hw.word_bytes
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    last_p0, last_m0 = s.p - (n_pt - 1) * plan.p0, s.m - (n_mt - 1) * plan.m0
    p1 = min(plan.p1, n_pt)
    need = one_pass_buffer_bytes(replace(plan, p1=1), s, w)
    used = one_pass_buffer_bytes(replace(plan, p1=p1), s, w)
    if used > hw.buffer_bytes:
        raise InfeasibleError(
            f"{p1} query tiles of {plan.p0} queries need {used} bytes of global buffer, only {hw.buffer_bytes} "
            f"exist (the smallest legal tile set, one query tile of {plan.p0} plus a K/V tile of {plan.m0} keys, "
            f"needs {need} bytes)", field="plan.p1")
    groups_full, rem = divmod(n_pt, p1)
    # one head's groups: full ones, then the remainder (with the possibly partial last query tile)
    head = [(p1, plan.p0)] * groups_full + ([(rem, last_p0)] if rem else [])
    if not rem:
        head[-1] = (p1, last_p0)
    n_units = s.b * s.h
    tiles = n_units * n_pt * n_mt
    extrapolated = tiles > full_sim_max_tiles
    if extrapolated:
        latency = _extrapolated_latency(plan, hw, s, head, n_units, n_mt, last_m0)
    else:
        latency = _one_pass_stream(plan, hw, s, head * n_units, n_mt, last_m0)
    # exact counts of work per unit (not extrapolated)
    per_einsum: dict[str, float] = {}
    actions: dict[str, float] = {}
    for e, (op, level, _) in ONE_PASS_EINSUMS.items():
        unit = plan.binding[e]
        count = s.b * s.h * n_pt if level == "final" else tiles
        per_einsum[e] = einsum_cycles(e, unit, hw, s, plan.p0, plan.m0) * count
        array = hw.array_2d if unit == "2d" else hw.array_1d
        elements = s.b * s.h * _useful_elements(e, s, n_mt)
        acts = dict(array.cost(op).actions)
        if op == "exp" and "add" not in acts:
            acts["add"] = acts.get("add", 0) + 1  # the separate subtraction
        for act, k in acts.items():
            actions[act] = actions.get(act, 0.0) + k * elements
            if act == "mac":
                actions[f"mac@{unit}"] = actions.get(f"mac@{unit}", 0.0) + k * elements
    busy = {u: sum(c for e, c in per_einsum.items() if plan.binding[e] == u) for u in ("2d", "1d")}
    traffic = traffic_bytes(replace(plan, p1=p1), s, hw)
    busy["dram"] = _dram_cycles(sum(traffic.values()), hw)
    if extrapolated:  # an exact lower bound the extrapolation may undercut near a DRAM/compute balance
        latency = max(latency, *busy.values())
    staged = staged_tile_tensors(plan) * 2 * s.b * s.h * s.m * s.p * w  # write + read per crossing tensor
    actions["buffer_read_bytes"] = sum(traffic.values()) + staged / 2
    actions["buffer_write_bytes"] = sum(traffic.values()) + staged / 2
    return SimResult(latency, busy, per_einsum, traffic, used, need, actions)


def _useful_elements(e: str, s: AttentionShape, n_mt: int) -> int:
    """Real (unpadded) ops of one (b, h) instance of a 1-pass Einsum."""
    op, level, contracted = ONE_PASS_EINSUMS[e]
    k = {"e": s.e, "f": s.f, None: 1}[contracted]
    if level == "tile":
        return s.p * s.m * k
    if level == "row":
        return s.p * n_mt * k  # once per key tile
    return s.p * k


def _simulate_three_pass(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> SimResult:
    """FLAT (fused, row blocks pipelined per query tile) or the unfused baseline (three phases).

    FLAT: per query tile, QK on the 2D array, the softmax on the 1D array and AV on the 2D array,
    software-pipelined (the 2D array runs QK of tile i+1 before AV of tile i) while DRAM streams
    the tile's share of the block's traffic. The buffer enters through the spill fraction of the
    score rows (``flat_spill_fraction``). Unfused: three phases one after the other, each a DRAM
    stream overlapped with its compute."""
    w = hw.word_bytes
    pes = hw.array_2d.rows * hw.array_2d.cols
    if "mac" not in hw.array_2d.ops or not all(op in hw.array_1d.ops for op, _ in SOFTMAX_OPS):
        raise AccelsimError("the 3-pass cascade needs MACs on the 2D array and max/exp/add/div on the 1D array",
                            field="hardware")
    fixed = three_pass_min_buffer_bytes(plan, s, hw)
    if fixed > hw.buffer_bytes:
        raise InfeasibleError(
            f"{plan.design}: the {hw.array_2d.rows}x{hw.array_2d.cols} 2D array's double-buffered output tile plus "
            f"a {plan.p0}-query Q tile and a {plan.m0}-key K/V tile need {fixed} bytes of global buffer (they "
            f"cannot spill), only {hw.buffer_bytes} exist", field="hardware.global_buffer.capacity_bytes")
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    qk_cyc = n_mt * math.ceil(plan.p0 / hw.array_2d.cols) * s.e  # one query tile row of QK
    av_cyc = n_mt * math.ceil(plan.p0 / hw.array_2d.cols) * s.f
    sm_cyc = math.ceil(plan.p0 * s.m / hw.array_1d.cols) * softmax_cycles_per_element(hw)
    traffic = traffic_bytes(plan, s, hw)
    total_bytes = sum(traffic.values())
    rows_total = s.b * s.h * n_pt
    per_row_bytes = total_bytes / rows_total
    spill = flat_spill_fraction(plan, s, hw) if (plan.fused and plan.qk_onchip) else 0.0
    if plan.fused:
        def sim(count: int) -> float:
            tasks: list[Task] = []
            prev_av = None
            for i in range(count):
                ld = Task(f"in{i}", "dram", _dram_cycles(per_row_bytes, hw))
                qk = Task(f"QK{i}", "2d", qk_cyc, deps=[ld])
                sm = Task(f"SM{i}", "1d", sm_cyc, deps=[qk])
                tasks += [ld, qk, sm]
                if prev_av is not None:
                    tasks.append(prev_av)
                prev_av = Task(f"AV{i}", "2d", av_cyc, deps=[sm])
            tasks.append(prev_av)
            return run(tasks, ["2d", "1d", "dram"]).makespan_cycles
        latency = extrapolate(sim, rows_total, 8, 16)
    else:
        def phase(unit: str, cyc: float, nbytes: float) -> float:
            def sim(count: int) -> float:
                tasks = []
                for i in range(count):
                    ld = Task(f"io{i}", "dram", _dram_cycles(nbytes, hw))
                    tasks += [ld, Task(f"c{i}", unit, cyc, deps=[ld])]
                return run(tasks, [unit, "dram"]).makespan_cycles
            return extrapolate(sim, rows_total, 8, 16)
        latency = (phase("2d", qk_cyc, (traffic["Q"] + traffic["K"] + traffic["QK"] / 2) / rows_total)
                   + phase("1d", sm_cyc, (traffic["QK"] / 2 + traffic["A"] / 2) / rows_total)
                   + phase("2d", av_cyc, (traffic["A"] / 2 + traffic["V"] + traffic["AV"]) / rows_total))
    per_einsum = {"QK": qk_cyc * rows_total, "AV": av_cyc * rows_total, "softmax": sm_cyc * rows_total}
    busy = {"2d": per_einsum["QK"] + per_einsum["AV"], "1d": per_einsum["softmax"],
            "dram": _dram_cycles(total_bytes, hw)}
    elements = s.b * s.h * s.m * s.p
    actions: dict[str, float] = {"mac": float(elements * (s.e + s.f)), "mac@2d": float(elements * (s.e + s.f))}
    for op, k in SOFTMAX_OPS:
        for act, n in hw.array_1d.cost(op).actions.items():
            actions[act] = actions.get(act, 0.0) + n * k * elements
    onchip_rows = elements * w * (0 if not plan.fused else (1 - spill)) * 3  # QK, SN, A through the buffer
    actions["buffer_read_bytes"] = total_bytes + onchip_rows
    actions["buffer_write_bytes"] = total_bytes + onchip_rows
    used = min(hw.buffer_bytes, flat_row_bytes(plan, s, hw)) if plan.fused else 0
    need = (plan.p0 * s.m * w + 2 * pes * w) if plan.fused else 2 * pes * w
    return SimResult(latency, busy, per_einsum, traffic, used, need, actions, spill)


def simulate(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape,
             full_sim_max_tiles: int | None = None) -> SimResult:
    """Simulate one attention layer. 1-pass layers with more than ``full_sim_max_tiles`` tiles
    (default ``FULL_SIM_MAX_TILES``) are extrapolated from truncated streams."""
    if plan.cascade == "1pass":
        return _simulate_one_pass(plan, hw, s, full_sim_max_tiles)
    if plan.cascade == "3pass":
        return _simulate_three_pass(plan, hw, s)
    raise AccelsimError(f"unknown cascade {plan.cascade!r}", field="plan.cascade", allowed=["1pass", "3pass"])


def energy_pj(result: SimResult, hw: SpatialAccelerator) -> dict[str, float]:
    """Energy by component from action counts and the per-action table (Accelergy-style)."""
    e = hw.energy
    compute = sum(n * e.compute_pj.get(act, 0.0) for act, n in result.actions.items()
                  if not act.endswith("_bytes") and "@" not in act)
    # operand register-file reads of each MAC, per array (Eyeriss-style PE register files)
    compute += (result.actions.get("mac@2d", 0.0) * hw.array_2d.regfile_pj_per_mac
                + result.actions.get("mac@1d", 0.0) * hw.array_1d.regfile_pj_per_mac)
    buffer = (result.actions.get("buffer_read_bytes", 0.0) * e.buffer_read_pj_per_byte
              + result.actions.get("buffer_write_bytes", 0.0) * e.buffer_write_pj_per_byte)
    dram = sum(result.traffic.values()) * e.dram_pj_per_byte
    return {"compute_pj": compute, "buffer_pj": buffer, "dram_pj": dram, "total_pj": compute + buffer + dram}


def report(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape, workload: str = "attention") -> Report:
    """Simulate and package: latency, traffic, energy, utilization and buffer need."""
    r = simulate(plan, hw, s)
    lat = r.latency_cycles
    energy = energy_pj(r, hw)
    pes2, pes1 = hw.array_2d.pes, hw.array_1d.pes
    totals = {
        "latency_cycles": lat,
        "latency_s": lat / hw.clock_hz,
        "dram_bytes": sum(r.traffic.values()),
        "energy_pj": energy["total_pj"],
        "util_2d": r.busy_cycles["2d"] / lat if lat else 0.0,
        "util_1d": r.busy_cycles["1d"] / lat if lat else 0.0,
        "buffer_bytes_needed": r.buffer_bytes_needed,
        "buffer_bytes_used": r.buffer_bytes_used,
        "area_um2": hw.area_um2()["total"],
        "spill_fraction": r.spill_fraction,
    }
    layers = [{"einsum": e, "unit": plan.binding.get(e, "2d" if e in ("QK", "AV") else "1d"),
               "busy_cycles": c, "util": c / lat if lat else 0.0} for e, c in r.einsum_cycles.items()]
    meta = {"plan": plan.describe(), "traffic_bytes": r.traffic, "energy_breakdown_pj": energy,
            "shape": vars(s), "pes_2d": pes2, "pes_1d": pes1}
    return Report(workload=workload, hardware=hw.name, layers=layers, totals=totals, meta=meta)
