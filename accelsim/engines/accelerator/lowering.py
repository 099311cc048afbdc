"""Every Einsum of a Graph becomes work on one unit of the chip: nothing is dropped or free.

Why one table of rules rather than per-engine special cases: a model contains GEMMs, batched
attention GEMMs, MoE experts, element-wise and reduction ops, copies and collectives, and each
kind has exactly one place it runs:

===========================================  ==========  =========================================
Einsum                                        unit        cost
===========================================  ==========  =========================================
two-input MAC (``as_gemm``)                  matrix      the chip's GEMM model x ``flop_fraction``
MoE expert MAC (``kind: moe_expert``)        matrix      one GEMM per touched expert, its tokens
other MAC (combine, 3+ inputs)               vector      points x ``flop_fraction`` MACs
add/sub/mul/max/exp/div/activation/norm      vector      points x ``flop_fraction`` x op cycles
copy (gathers, KV-cache writes, dispatch)    dma         bytes moved, nothing computed
all-reduce                                   link        ``collective_bytes`` / link bandwidth
===========================================  ==========  =========================================

An Einsum the chip cannot run (a vector op with no vector unit, an all-reduce without links)
is a ``Problem`` naming it, found by ``problems`` before any simulation.

Where tensors live: weights, graph inputs and the KV cache are in DRAM; an intermediate
activation stays on chip when it fits half the activation buffer (the other half is the double
buffer), otherwise its producer writes it to DRAM and each consumer reads it back. Graph
outputs (sinks) and KV-cache writes go to DRAM, except the hidden state a repeated block hands
to the next repeat, which stays on chip when it fits. Off-chip bytes honour ``touched`` fractions (0 marks a fused tensor kept on chip).

Causal prefill (``flop_fraction`` about 1/2 on scores) scales the matrix cycles too: a kernel
skips fully masked tiles, so about half the tiles run (an approximation at tile granularity).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from accelsim.engines.accelerator.chips import Chip
from accelsim.engines.registry import Problem
from accelsim.ir import Einsum, GemmShape, Graph, OpKind, Tensor, TensorRole

OFFCHIP_ROLES = frozenset({TensorRole.WEIGHT, TensorRole.INPUT, TensorRole.KV_CACHE})
WRITTEN_ROLES = frozenset({TensorRole.OUTPUT, TensorRole.KV_CACHE})
VECTOR_KINDS = frozenset({OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.MAX, OpKind.EXP, OpKind.DIV,
                          OpKind.ACTIVATION, OpKind.NORM})


@dataclass
class OpWork:
    """One Einsum's work: where it runs, how long the unit is busy, what it moves off chip."""

    einsum: Einsum
    unit: str  # matrix | vector | dma | link
    unit_cycles: float
    macs: float = 0.0
    reads: dict[str, float] = field(default_factory=dict)  # tensor -> DRAM bytes read
    writes: dict[str, float] = field(default_factory=dict)  # tensor -> DRAM bytes written
    energy_pj: dict[str, float | None] = field(default_factory=dict)  # component -> pJ, None: not given
    mapper: str | None = None  # matrix work: what placed the GEMM (``GemmWork.mapper``)


def _touched(e: Einsum, name: str) -> float:
    return float(e.attrs.get("touched", {}).get(name, 1.0))


def _fraction(e: Einsum) -> float:
    return float(e.attrs.get("flop_fraction", 1.0))


class Placement:
    """Which tensors of a Graph live off chip (see the module doc)."""

    def __init__(self, graph: Graph, chip: Chip, carried: str | None = None, carried_in: str | None = None) -> None:
        half = chip.activation_buffer_bytes / 2
        # A sink (no consumer) leaves the chip, except the hidden state a repeated block hands to
        # the next one (``carried``), which stays when it fits like any activation; the hidden state
        # a part receives that way (``carried_in``, an input by role) is then on chip too.
        sinks = {name for name in graph.tensors if not graph.consumers.get(name) and name != carried}
        kept_in = {carried_in} if carried_in in graph.tensors and graph.tensors[carried_in].bytes <= half else set()
        self.offchip = {t.name for t in graph.tensors.values()
                        if (t.role in OFFCHIP_ROLES or t.role in WRITTEN_ROLES or t.bytes > half or t.name in sinks)
                        and t.name not in kept_in}

    def is_offchip(self, t: Tensor) -> bool:
        return t.name in self.offchip


def _expert_layout(e: Einsum) -> tuple[Tensor, Tensor, list[str], list[str], str]:
    """(activation input, weight, K ranks, N ranks, expert rank) of an MoE expert Einsum."""
    weight = next(o for o in e.inputs if o.tensor.role is TensorRole.WEIGHT)
    out = e.output.ranks
    onehot = next(o for o in e.inputs if o is not weight and o.tensor.role is TensorRole.INPUT)
    expert = next(iter((set(onehot.ranks) & set(weight.ranks)) - out))
    act = next(o for o in e.inputs if o is not weight and o is not onehot)
    k = [r for r in e.extents if r not in out and r != expert]
    n = [r for r in e.extents if r in out and r in weight.ranks]
    return act.tensor, weight.tensor, k, n, expert


def _expert_counts(e: Einsum) -> Counter[float]:
    """Tokens per touched expert -> how many experts get that many (expected counts may be
    fractional: a mean of ``m`` tokens is split into experts with floor(m) and ceil(m))."""
    given = e.attrs.get("expert_tokens")
    if given is not None:
        return Counter(float(c) for c in given if c > 0)
    distinct = float(e.attrs["distinct_experts"])
    mean = float(e.attrs["processed_assignments"]) / distinct if distinct else 0.0
    lo, frac = math.floor(mean), mean - math.floor(mean)
    counts: Counter[float] = Counter()
    if lo > 0 and frac < 1:
        counts[float(lo)] += distinct * (1 - frac)
    if frac > 0:
        counts[float(lo + 1)] += distinct * frac
    return counts


def _gemm_traffic(e: Einsum, words: dict[str, float], ifmap: Tensor, filt: Tensor, out_words: float,
                  place: Placement, touched: bool) -> tuple[dict[str, float], dict[str, float]]:
    """DRAM reads and writes of GEMM work from the chip model's words: operands that live off chip
    stream in (with the model's re-fetches); partial sums that do not fit the accumulators go to
    DRAM and come back whatever the output's home; the output is written when it lives off chip."""
    share = (lambda t: _touched(e, t.name)) if touched else (lambda t: 1.0)
    reads: dict[str, float] = {}
    writes: dict[str, float] = {}
    for op, t in (("ifmap", ifmap), ("filter", filt)):
        if place.is_offchip(t):
            reads[t.name] = reads.get(t.name, 0.0) + words[op] * t.dtype_bytes * share(t)
    out = e.output.tensor
    spilled = max(0.0, words["ofmap_write"] - out_words) * out.dtype_bytes
    written = out_words * out.dtype_bytes * share(out) if place.is_offchip(out) else 0.0
    if written + spilled:
        writes[out.name] = written + spilled
    if words["ofmap_read"]:
        reads[out.name] = reads.get(out.name, 0.0) + words["ofmap_read"] * out.dtype_bytes
    return reads, writes


def _gemm_work(e: Einsum, chip: Chip, place: Placement) -> OpWork:
    from accelsim.engines.systolic import ifmap_footprint_words

    shape = e.as_gemm()
    tensors = {o.tensor.name: o.tensor for o in e.inputs}
    ifmap, filt = tensors[shape.ifmap], tensors[shape.filter]
    out = e.output.tensor
    offchip = tuple(float(place.is_offchip(t)) * _touched(e, t.name) for t in (ifmap, filt, out))
    g = chip.gemm(shape, ifmap_footprint_words(e, shape), ifmap.dtype_bytes, offchip)
    frac = _fraction(e)
    reads, writes = _gemm_traffic(e, g.dram_words, ifmap, filt, float(shape.batch * shape.m * shape.n), place, True)
    energy = {k: None if v is None else v * frac for k, v in g.energy_pj.items()}
    return OpWork(e, "matrix", g.cycles * frac, g.macs * frac, reads, writes, energy, g.mapper)


def _expert_work(e: Einsum, chip: Chip, place: Placement) -> OpWork:
    """One GEMM per touched expert (its tokens x K times its K x N weights), summed: cycles, the
    chip model's traffic (re-fetches and partial sums included) and energy. Which experts and how
    many tokens each is the routing's, so ``touched`` is not applied again."""
    act, weight, k_ranks, n_ranks, expert = _expert_layout(e)
    k = math.prod(e.extents[r] for r in k_ranks)
    n = math.prod(e.extents[r] for r in n_ranks)
    cycles = macs = out_words = 0.0
    words = {"ifmap": 0.0, "filter": 0.0, "ofmap_read": 0.0, "ofmap_write": 0.0}
    energy: dict[str, float | None] = {}
    placed: set[str] = set()
    offchip = tuple(float(place.is_offchip(t)) for t in (act, weight, e.output.tensor))
    for tokens, experts in _expert_counts(e).items():
        g = chip.gemm(GemmShape(int(tokens), k, n, 1, act.name, weight.name, e.output.tensor.name), None,
                      act.dtype_bytes, offchip)
        placed.update(g.mapper.split("+"))
        cycles += experts * g.cycles
        macs += experts * g.macs
        out_words += experts * int(tokens) * n
        for op in words:
            words[op] += experts * g.dram_words[op]
        for part, pj in g.energy_pj.items():
            known = energy.get(part, 0.0)
            energy[part] = None if pj is None or known is None else known + experts * pj
    reads, writes = _gemm_traffic(e, words, act, weight, out_words, place, False)
    return OpWork(e, "matrix", cycles, macs, reads, writes, energy, "+".join(sorted(placed)) or None)


def _operand_traffic(e: Einsum, place: Placement) -> tuple[dict[str, float], dict[str, float]]:
    reads = {o.tensor.name: o.tensor.bytes * _touched(e, o.tensor.name) for o in e.inputs
             if place.is_offchip(o.tensor)}
    out = e.output.tensor  # touched = 0 marks a fused tensor that never leaves the chip (FlashAttention)
    writes = {out.name: out.bytes * _touched(e, out.name)} if place.is_offchip(out) else {}
    return reads, writes


def _vector_op(e: Einsum) -> str:
    return "mac" if e.op is OpKind.MAC else e.op.value


def lower(e: Einsum, chip: Chip, place: Placement) -> OpWork:
    """The work of one Einsum (``problems`` has already ruled out what cannot run)."""
    if e.op is OpKind.MAC and e.attrs.get("kind") == "moe_expert":
        return _expert_work(e, chip, place)
    if _is_gemm(e):
        return _gemm_work(e, chip, place)
    reads, writes = _operand_traffic(e, place)
    if e.op is OpKind.COPY:
        return OpWork(e, "dma", 0.0, 0.0, reads, writes or {e.output.tensor.name: 0.0})
    if e.op is OpKind.ALLREDUCE:
        links = chip.links  # None only for a single participant (``problems``): nothing to exchange
        seconds = 0.0 if links is None else (float(e.attrs.get("collective_bytes", 0)) / links.bandwidth_bytes_per_s
                                             + links.latency_s)
        return OpWork(e, "link", seconds * chip.clock_hz, 0.0, reads, writes, {"link": None})
    op = _vector_op(e)
    elements = e.points * _fraction(e)
    cycles = chip.vector_cycles(op, elements)
    macs = elements if e.op is OpKind.MAC else 0.0
    return OpWork(e, "vector", float(cycles), macs, reads, writes, {"vector": chip.vector_energy_pj(op, elements)})


def _is_gemm(e: Einsum) -> bool:
    """A two-input MAC that contracts a rank: a GEMM for the arrays (an element-wise product-sum
    with nothing to contract is vector work)."""
    return e.op is OpKind.MAC and len(e.inputs) == 2 and bool(e.reduction_ranks())


def _attr_problems(e: Einsum) -> list[Problem]:
    """Counting attributes outside their meaning: fractions of work and of tensors lie in [0, 1]."""
    found = []
    frac = e.attrs.get("flop_fraction", 1.0)
    if not (isinstance(frac, (int, float)) and 0 <= frac <= 1):
        found.append(Problem(f"einsum {e.name}: attrs.flop_fraction", f"must be in [0, 1], got {frac!r}"))
    for name, share in dict(e.attrs.get("touched", {})).items():
        if not (isinstance(share, (int, float)) and 0 <= share <= 1):
            found.append(Problem(f"einsum {e.name}: attrs.touched.{name}", f"must be in [0, 1], got {share!r}"))
    if e.op is OpKind.MAC and e.attrs.get("kind") == "moe_expert":
        try:
            _expert_layout(e)
            _expert_counts(e)
        except (StopIteration, KeyError, ValueError, ZeroDivisionError):
            found.append(Problem(f"einsum {e.name}", "an MoE expert Einsum needs a weight with an expert rank, a "
                                 "one-hot input map (role input) and routing attrs (distinct_experts, "
                                 "processed_assignments or expert_tokens)", "as workloads.moe builds it"))
    return found


def problems(graph: Graph, chip: Chip) -> list[Problem]:
    """Every Einsum the chip cannot run, named (checked before any simulation)."""
    found: list[Problem] = []
    for e in graph.einsums:
        found.extend(_attr_problems(e))
        if e.op is OpKind.ALLREDUCE and int(e.attrs.get("participants", 1)) > 1 and chip.links is None:
            found.append(Problem(f"einsum {e.name}", "an all-reduce needs chip-to-chip links; the hardware has none",
                                 "a hardware file with links: {bandwidth_bytes_per_s, latency_s}, or tp 1"))
        elif e.op is OpKind.MAC and e.attrs.get("kind") == "moe_expert":
            continue
        elif _is_gemm(e):
            continue
        elif e.op in VECTOR_KINDS or e.op is OpKind.MAC:
            op = _vector_op(e)
            if chip.vector_cycles(op, 1.0) is None:
                found.append(Problem(f"einsum {e.name}", f"op {op!r} has no unit on this chip (no vector unit "
                                     "runs it)", ", ".join(chip.vector_ops) or "none: add a vector unit"))
        elif e.op not in (OpKind.COPY, OpKind.ALLREDUCE):
            found.append(Problem(f"einsum {e.name}", f"op {e.op.value!r} has no unit on this chip"))
    return found
