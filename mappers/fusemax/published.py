"""The published designs of the FuseMax artifact (FPSG-UIUC/micro24-fusemax-artifact) as plans
over the cascade Graphs of ``workloads/attention.py``, and as the Mappings the engine replays.

- ``fusemax``: the 1-pass cascade with FuseMax's binding (QK, LM, SLN, SLD, SLNV on the 2D
  array; RM, PRM, SPD, RD, SPNV, RNV, AV on the 1D array), four lock-step stages per tile with
  RD/RNV of tile t overlapping QK of tile t+1, query tiles interleaved (no reduction stall).
  P1 = the largest factor of the query-tile count that fits the buffer (proposal.py).
- ``arch``: the same hardware and binding without the interleaving (StallProposal).
- ``cascade``: the 1-pass cascade on FLAT's hardware: only QK and SLNV on the MAC-only 2D array.
- ``flat``: FLAT's row-granularity fusion of the 3-pass cascade, its row block chosen the way
  FLAT's dataflow search chose it (see ``flat_plan``).
- ``unfused``: the 3-pass cascade with QK and A through DRAM.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

from accelsim.engines.spatial import (
    AttentionPlan,
    Cascade,
    cascade_of,
    encode,
    one_pass_buffer_bytes,
    softmax_cycles_per_element,
    traffic_bytes,
)
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Graph
from accelsim.ir.views import AttentionShape
from accelsim.mapping import Mapping
from workloads.attention import cascade

MAPPER = "mappers.fusemax"


@lru_cache(maxsize=256)
def one_pass_table(s: AttentionShape, m0: int) -> Cascade:
    """The engine's view of the 1-pass cascade Graph at key tile ``m0`` (cached: plans share it)."""
    return cascade_of(cascade("1pass", s, m0=m0))


@lru_cache(maxsize=256)
def three_pass_table(s: AttentionShape) -> Cascade:
    return cascade_of(cascade("3pass", s))


def plan_graph(plan: AttentionPlan, s: AttentionShape) -> Graph:
    """The cascade Graph a plan runs (the 1-pass one split at the plan's key tile)."""
    return cascade(plan.cascade, s, m0=plan.m0)


def plan_mapping(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> Mapping:
    """A plan as the Mapping the engine replays (``accelsim.engines.spatial.encode``)."""
    return encode(plan, plan_graph(plan, s), hw.name, MAPPER)


def published_mapping(design: str, hw: SpatialAccelerator, s: AttentionShape) -> Mapping:
    """The artifact's mapping of ``design`` on ``hw``; replay it with
    ``accelsim.engines.spatial.report(mapped_graph(s, mapping), hw, mapping)``."""
    return plan_mapping(published_plan(design, hw, s), hw, s)



DESIGNS = ("unfused", "flat", "cascade", "arch", "fusemax")
DESIGN_HARDWARE = {"unfused": "flat-cloud", "flat": "flat-cloud", "cascade": "flat-cloud",
                   "arch": "fusemax-cloud", "fusemax": "fusemax-cloud"}
FUSEMAX_2D = ("QK", "LM", "SLN", "SLD", "SLNV")


def _binding(tb: Cascade, on_2d: tuple[str, ...]) -> dict[str, str]:
    return {e: ("2d" if e in on_2d else "1d") for e in tb.einsums}


def _factors_desc(n: int) -> list[int]:
    return sorted({d for i in range(1, int(n ** 0.5) + 1) if n % i == 0 for d in (i, n // i)}, reverse=True)


def published_p1(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> int:
    """The artifact's rule: as many query tiles as the buffer holds, rounded down to a factor of
    the query-tile count (no imperfect factorization)."""
    n_pt = math.ceil(s.p / plan.p0)
    one = one_pass_buffer_bytes(replace(plan, p1=1), s, hw.word_bytes)
    kv = plan.m0 * (s.e + s.f) * hw.word_bytes
    per_tile = one - kv
    fit = (hw.buffer_bytes - kv) // per_tile
    if fit < 1:
        raise InfeasibleError(f"the global buffer ({hw.buffer_bytes} bytes) cannot hold the smallest legal tile set: "
                              f"one query tile of {plan.p0} queries with its state plus one K/V tile of {plan.m0} keys "
                              f"needs {one} bytes", field="hardware.global_buffer.capacity_bytes")
    fit = min(fit, n_pt)
    return next(f for f in _factors_desc(n_pt) if f <= fit)


def published_plan(design: str, hw: SpatialAccelerator, s: AttentionShape) -> AttentionPlan:
    """The plan the FuseMax artifact evaluates for ``design`` on ``hw``."""
    pe = hw.pe_dim
    p0, m0 = min(pe, s.p), min(hw.array_2d.rows, s.m)
    tb = one_pass_table(s, m0)
    deferrable = frozenset(tb.deferrable)
    if design == "fusemax":
        plan = AttentionPlan("fusemax", "1pass", p0, m0, 1, _binding(tb, FUSEMAX_2D),
                             (("QK", "LM", "RD", "RNV", "AV"), ("RM",), ("SLN", "SLD", "PRM", "SPD"), ("SLNV", "SPNV")),
                             deferrable, interleaved=True, table=tb)
    elif design == "arch":
        plan = AttentionPlan("arch", "1pass", p0, m0, 1, _binding(tb, FUSEMAX_2D),
                             (("QK", "LM", "RD", "AV"), ("RM",), ("SLN", "SLD", "PRM", "SPD"), ("SLNV", "SPNV", "RNV")),
                             frozenset({"RD", "AV"}), interleaved=False, table=tb)
    elif design == "cascade":
        plan = AttentionPlan("cascade", "1pass", p0, m0, 1, _binding(tb, ("QK", "SLNV")),
                             (("QK", "RD", "RNV", "AV"), ("LM", "RM", "SLN", "PRM", "SPD", "SLD"), ("SLNV", "SPNV")),
                             deferrable, interleaved=True, table=tb)
    elif design == "flat":
        return flat_plan(hw, s)
    elif design == "unfused":
        return AttentionPlan("unfused", "3pass", p0, m0, qk_onchip=False, fused=False, table=three_pass_table(s))
    else:
        raise AccelsimError(f"unknown design {design!r}", field="design", allowed=DESIGNS)
    _check_ops(plan, hw)
    return replace(plan, p1=published_p1(plan, hw, s))


def _check_ops(plan: AttentionPlan, hw: SpatialAccelerator) -> None:
    for e, unit in plan.binding.items():
        array = hw.array_2d if unit == "2d" else hw.array_1d
        op = plan.cascade_table.op(e)
        if op not in array.ops:
            raise AccelsimError(f"{e} ({op}) is bound to the {unit} array of {hw.name}, which has no {op}",
                                field="binding", allowed=sorted(array.ops))


# --- FLAT ----------------------------------------------------------------------------------
def _estimate_cycles(plan: AttentionPlan, hw: SpatialAccelerator, s: AttentionShape) -> float:
    """max(2D, 1D, DRAM) busy cycles of a fused 3-pass plan (what its pipeline converges to)."""
    n_pt, n_mt = math.ceil(s.p / plan.p0), math.ceil(s.m / plan.m0)
    two_d = s.b * s.h * n_pt * n_mt * (s.e + s.f)
    one_d = s.b * s.h * n_pt * math.ceil(plan.p0 * s.m / hw.array_1d.cols) * softmax_cycles_per_element(hw, plan.cascade_table)
    dram = sum(traffic_bytes(plan, s, hw).values()) / hw.dram.bytes_per_cycle(hw.clock_hz)
    return max(two_d, one_d, dram)


def flat_candidates(hw: SpatialAccelerator, s: AttentionShape) -> list[AttentionPlan]:
    """FLAT's mapping space: fuse a whole head or row blocks of 256, 512 or 1024 queries (FLAT's
    row granularities, flat_validation.csv), score rows on chip (spilling what does not fit) or
    off chip with Q held and K, V streamed once per block."""
    pe = hw.pe_dim
    p0, m0 = min(pe, s.p), min(hw.array_2d.rows, s.m)
    blocks = sorted({s.p} | {b for b in (pe, 2 * pe, 4 * pe) if b < s.p}, reverse=True)
    w = hw.word_bytes
    tb = three_pass_table(s)
    out = [AttentionPlan("flat", "3pass", p0, m0, blk, qk_onchip=True, table=tb) for blk in blocks]
    # scores off chip: the block's Q rows and AV accumulators stay on chip with a K and a V tile
    out += [AttentionPlan("flat", "3pass", p0, m0, blk, qk_onchip=False, table=tb) for blk in blocks
            if blk * (s.e + s.f) * w + m0 * (s.e + s.f) * w <= hw.buffer_bytes]
    return out


def flat_plan(hw: SpatialAccelerator, s: AttentionShape) -> AttentionPlan:
    """FLAT's choice: the fastest option; among equally fast ones, scores on chip first, then the
    coarsest fusion (FLAT prefers the largest row block that does not slow it down). This
    reproduces the artifact's per-length FLAT configurations (head at 1K-4K, 1024 rows at 16K,
    256 at 64K, off-chip scores with 1024-row blocks from 256K) without a per-length table."""
    cands = flat_candidates(hw, s)
    return min(cands, key=lambda c: (round(_estimate_cycles(c, hw, s)), not c.qk_onchip, -c.p1))

