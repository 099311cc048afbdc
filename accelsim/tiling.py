"""Loop nests on multi-level memories, as data: the problem, the hierarchy and the nest.

Why its own module: the tiling mapper (``mappers/tiling``) chooses a ``LoopNest`` and the
loop-nest engine (``accelsim/engines/loopnest.py``) costs it; both speak these types, and a
nest is stored in ``Mapping.tiling[einsum]`` through ``to_dict``/``from_dict`` so a saved
mapping can be replayed without the mapper.

Conventions (Timeloop's, Parashar et al., ISPASS 2019):

* ``Hierarchy.levels`` lists storage levels innermost first (``levels[0]`` feeds the MACs, the
  last is DRAM). A level's ``fanouts`` are the spatial dimensions *below* it: ``cores`` under a
  shared L2, ``rows`` and ``cols`` of an array under its local buffer. Capacities and
  bandwidths are per instance of the level.
* A ``LoopNest`` lists one ``LevelLoops`` per storage level, outermost (DRAM) first: temporal
  loops (rank, factor) outer to inner, and spatial factors per fanout. The tile a level holds
  is the product of every factor at that level and below; the product of all factors of a rank
  is its extent (perfect factorisation: factors are divisors).
* A fanout with ``waves`` (a GPU's grid of thread blocks over its SMs) may take a logical
  factor larger than its size; the instances then run ``ceil(factor / size)`` waves in time.
"""
from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.ir import Einsum, OpKind
from accelsim.tiling_window import Window, footprint_elements, positions_and_sum

GEMM_RANKS: tuple[str, ...] = ("b", "m", "k", "n")
# A convolution's ranks, the IR's names (``accelsim.ir.conv2d``): batch, output channels, input
# channels, output rows and columns, filter rows and columns.
CONV_RANKS: tuple[str, ...] = ("n", "k", "c", "p", "q", "r", "s")


@dataclass(frozen=True)
class TensorAccess:
    """One operand of the loop problem: the ranks that index it and its element size.

    ``windows``: indices of the form ``p * stride + r * dilation`` (a convolution's input); both
    ranks of a window are in ``ranks``, and a tile's elements are the distinct rows each window
    touches (``accelsim.tiling_window``) times the extents of the other ranks.
    """

    name: str
    ranks: frozenset[str]
    dtype_bytes: int
    is_output: bool = False
    windows: tuple[Window, ...] = ()

    def footprint(self, tile: MappingABC[str, int]) -> int:
        """Elements a tile (extent per rank) can touch: what a level must hold for it. A window
        tile in the padding touches fewer (``visits``); capacity is sized for an interior one."""
        if not self.windows:
            return math.prod(tile[r] for r in self.ranks)
        return footprint_elements(tile, self.ranks, self.windows)

    def visits(self, tile: MappingABC[str, int], extents: MappingABC[str, int]) -> tuple[int, int]:
        """(positions of ``tile`` on the grid tiling ``extents``, elements summed over them)."""
        if not any(w.clips() for w in self.windows):
            count = math.prod(extents[r] // tile[r] for w in self.windows for r in (w.out_rank, w.filter_rank))
            return count, count * self.footprint(tile)
        return positions_and_sum(tile, extents, self.ranks, self.windows)


@dataclass(frozen=True)
class LoopProblem:
    """A multiply-accumulate over named ranks: projection operands (a GEMM), and for a
    convolution an input indexed through sliding windows (``TensorAccess.windows``)."""

    name: str
    extents: dict[str, int]
    tensors: tuple[TensorAccess, ...]

    def __post_init__(self) -> None:
        for t in self.tensors:
            if t.windows and t.is_output:
                raise AccelsimError(f"output {t.name} cannot be indexed through a sliding window",
                                    field=f"problem {self.name}")
            for w in t.windows:
                if w.out_rank not in t.ranks or w.filter_rank not in t.ranks:
                    raise AccelsimError(f"window {w.out_rank}*{w.stride}+{w.filter_rank}*{w.dilation} of {t.name} "
                                        f"names a rank it is not indexed by", field=f"problem {self.name}",
                                        allowed=sorted(t.ranks))

    @property
    def points(self) -> int:
        return math.prod(self.extents.values())

    def elements(self, t: TensorAccess) -> int:
        """Elements of ``t`` the whole problem touches (its compulsory traffic)."""
        return t.visits(self.extents, self.extents)[1]

    def compulsory_bytes(self) -> dict[str, int]:
        return {t.name: self.elements(t) * t.dtype_bytes for t in self.tensors}

    @property
    def output(self) -> TensorAccess:
        return next(t for t in self.tensors if t.is_output)

    def padded(self, extents: MappingABC[str, int]) -> LoopProblem:
        """The same operands over larger extents (a partial tile computed as a whole one)."""
        if set(extents) != set(self.extents) or any(extents[r] < e for r, e in self.extents.items()):
            raise AccelsimError(f"padded extents {dict(extents)} must cover {self.extents}",
                                field=f"mapping.tiling.{self.name}.extents")
        return LoopProblem(self.name, {r: int(extents[r]) for r in self.extents}, self.tensors)

    @classmethod
    def gemm(cls, m: int, k: int, n: int, batch: int = 1, dtype_bytes: int = 2, name: str = "gemm",
             names: tuple[str, str, str] = ("A", "B", "C")) -> LoopProblem:
        """``C[b,m,n] += A[b,m,k] * B[b,k,n]``; ranks of extent 1 are dropped (they never loop)."""
        for label, value in (("m", m), ("k", k), ("n", n), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AccelsimError(f"must be a positive integer, got {value!r}", field=f"gemm.{label}")
        extents = {r: v for r, v in zip(GEMM_RANKS, (batch, m, k, n)) if v > 1} or {"m": 1}
        keep = lambda ranks: frozenset(r for r in ranks if r in extents)
        tensors = (TensorAccess(names[0], keep("bmk"), dtype_bytes),
                   TensorAccess(names[1], keep("bkn"), dtype_bytes),
                   TensorAccess(names[2], keep("bmn"), dtype_bytes, is_output=True))
        return cls(name, extents, tensors)

    @classmethod
    def conv(cls, batch: int, k: int, c: int, p: int, q: int, r: int, s: int, stride: int = 1,
             dilation: int = 1, dtype_bytes: int = 1, name: str = "conv",
             names: tuple[str, str, str] = ("I", "W", "O"), output_dtype_bytes: int | None = None,
             pad: int = 0, input_hw: tuple[int, int] | None = None) -> LoopProblem:
        """``O[n,k,p,q] += I[n,c,p*stride+r*dilation,q*stride+s*dilation] * W[k,c,r,s]`` through its
        own ranks (``CONV_RANKS``); ranks of extent 1 are dropped (they never loop).

        ``p``/``q`` are output rows and columns. ``pad`` rows and columns of zeros on every side
        are not data: a window's coordinate ``p*stride + r*dilation - pad`` outside the input
        (``input_hw`` rows and columns; by default ``(p-1)*stride + (r-1)*dilation + 1 - 2*pad``, the
        fewest giving ``p`` outputs) is neither stored nor moved. A 1x1 convolution at stride 1 is the GEMM ``M = n*p*q, K = c, N = k``.
        """
        values = dict(batch=batch, k=k, c=c, p=p, q=q, r=r, s=s, stride=stride, dilation=dilation,
                      dtype_bytes=dtype_bytes)
        if output_dtype_bytes is not None:
            values["output_dtype_bytes"] = output_dtype_bytes
        for label, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AccelsimError(f"must be a positive integer, got {value!r}", field=f"conv.{label}")
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise AccelsimError(f"must be an integer >= 0, got {pad!r}", field="conv.pad")
        sizes = {o: (e - 1) * stride + (f - 1) * dilation + 1 - 2 * pad for o, e, f in (("p", p, r), ("q", q, s))}
        clipped = bool(pad) or input_hw is not None
        if input_hw is not None:
            if len(input_hw) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in input_hw):
                raise AccelsimError(f"must be two positive integers, got {input_hw!r}", field="conv.input_hw")
            if any(v < sizes[o] for o, v in zip("pq", input_hw)):
                raise AccelsimError(f"input {input_hw} is smaller than {p}x{q} outputs of a {r}x{s} filter need "
                                    f"({sizes['p']}x{sizes['q']} with padding {pad})", field="conv.input_hw")
            sizes = dict(zip("pq", input_hw))
        if pad and min(sizes.values()) <= 0:
            raise AccelsimError(f"padding {pad} leaves no input rows for {p}x{q} outputs of a {r}x{s} filter",
                                field="conv.pad", allowed="a padding below half the padded input")
        given = dict(zip(CONV_RANKS, (batch, k, c, p, q, r, s)))
        pairs = (("p", "r"), ("q", "s"))
        # A window with a rank of extent 1 is a plain rank (window_rows(a, 1, ...) = a) unless it
        # clips the padding; then both its ranks stay, so that its tiles can be placed.
        kept = {x for o, f in pairs if clipped and given[o] * given[f] > 1 for x in (o, f)}
        extents = {n: v for n, v in given.items() if v > 1 or n in kept} or {"k": 1}
        keep = lambda ranks: frozenset(x for x in ranks if x in extents)
        windows = tuple(Window(o, f, stride, dilation, pad, sizes[o] if clipped else None) for o, f in pairs
                        if o in extents and f in extents)
        tensors = (TensorAccess(names[0], keep("ncpqrs"), dtype_bytes, windows=windows),
                   TensorAccess(names[1], keep("kcrs"), dtype_bytes),
                   TensorAccess(names[2], keep("nkpq"), output_dtype_bytes or dtype_bytes, is_output=True))
        return cls(name, extents, tensors)

    @classmethod
    def from_conv_einsum(cls, einsum: Einsum, output_dtype_bytes: int | None = None) -> LoopProblem:
        """A convolution Einsum of ``accelsim.ir.conv2d`` (``attrs`` kind conv) through its own ranks."""
        attrs = einsum.attrs or {}
        if attrs.get("kind") != "conv" or einsum.op is not OpKind.MAC or len(einsum.inputs) != 2:
            raise AccelsimError("not a convolution einsum (accelsim.ir.conv2d)", field=f"einsum {einsum.name}")
        ifmap, weight = einsum.inputs
        e = einsum.extents
        return cls.conv(e["n"], e["k"], e["c"], e["p"], e["q"], e["r"], e["s"], int(attrs.get("stride", 1)),
                        1, ifmap.tensor.dtype_bytes, einsum.name,
                        (ifmap.tensor.name, weight.tensor.name, einsum.output.tensor.name),
                        output_dtype_bytes or einsum.output.tensor.dtype_bytes, int(attrs.get("padding", 0)),
                        (int(ifmap.tensor.shape[2]), int(ifmap.tensor.shape[3])))

    @classmethod
    def from_einsum(cls, einsum: Einsum) -> LoopProblem:
        """The GEMM view of a two-input MAC Einsum (a convolution through im2col, ``as_gemm``).

        The im2col view overstates a convolution's input footprint (a sliding window's overlap
        is counted once per window position); this is the SCALE-Sim lowering, which the engines
        still use. ``from_conv_einsum`` is the convolution through its own ranks.
        """
        if einsum.op is not OpKind.MAC:
            raise AccelsimError(f"the tiling mapper maps multiply-accumulate einsums, got {einsum.op.value}",
                                field=f"einsum {einsum.name}", allowed="op mac")
        g = einsum.as_gemm()
        dtype = max(t.dtype_bytes for t in einsum.tensors)
        return cls.gemm(g.m, g.k, g.n, g.batch, dtype, einsum.name, (g.ifmap, g.filter, g.ofmap))


@dataclass(frozen=True)
class Fanout:
    """A spatial dimension below a storage level: ``size`` instances of the level beneath."""

    name: str
    size: int
    waves: bool = False  # logical factor may exceed size (time-multiplexed)
    allowed_ranks: frozenset[str] | None = None  # None: any rank


@dataclass(frozen=True)
class StorageLevel:
    """One memory level, per instance. ``capacity_bytes`` None means unbounded (DRAM).

    ``capacity_by_tensor`` (tensor role ``A``/``B``/``C`` -> bytes) splits a level into operand
    buffers (SCALE-Sim's ifmap/filter/ofmap SRAMs) instead of one shared capacity; a key joining
    roles with ``+`` (``A+C``) is one buffer those operands share (ZigZag's tpu_like SRAM holds
    inputs and outputs, not weights).
    ``bandwidth_bytes_per_cycle`` None: the level never limits time (registers, whose port width
    is sized by design to the array they feed).
    """

    name: str
    capacity_bytes: int | None = None
    capacity_by_tensor: dict[str, int] | None = None
    bandwidth_bytes_per_cycle: float | None = None
    read_pj_per_byte: float = 0.0
    write_pj_per_byte: float = 0.0
    double_buffered: bool = False
    fanouts: tuple[Fanout, ...] = ()
    # role (A/B/C) -> (read, write) pJ per byte where an operand's accesses cost other than the
    # level's (ZigZag's tpu_like: the weights' share of a level is registers, the rest SRAM)
    energy_pj_per_byte_by_tensor: dict[str, tuple[float, float]] | None = None

    def energy_pj_per_byte(self, role: str) -> tuple[float, float]:
        """(read, write) pJ per byte of the operand with ``role`` at this level."""
        own = (self.energy_pj_per_byte_by_tensor or {}).get(role)
        return (float(own[0]), float(own[1])) if own is not None else (self.read_pj_per_byte, self.write_pj_per_byte)


@dataclass(frozen=True)
class Hierarchy:
    """Storage levels innermost first; ``mac_pj`` per MAC; ``clock_hz`` to report seconds."""

    name: str
    levels: tuple[StorageLevel, ...]
    clock_hz: float
    mac_pj: float = 0.0

    def level(self, name: str) -> StorageLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise AccelsimError(f"unknown memory level {name!r}", field="level", allowed=[lv.name for lv in self.levels])

    @property
    def peak_macs_per_cycle(self) -> int:
        return math.prod(f.size for lv in self.levels for f in lv.fanouts)


ROLE_OF_POSITION: tuple[str, str, str] = ("A", "B", "C")


def tensor_roles(problem: LoopProblem) -> dict[str, str]:
    """Tensor name -> ``A`` (ifmap), ``B`` (filter), ``C`` (output), for per-operand capacities."""
    return {t.name: role for t, role in zip(problem.tensors, ROLE_OF_POSITION)}


@dataclass(frozen=True)
class LevelLoops:
    """The loops of one storage level: temporal (outer to inner) and spatial per fanout."""

    level: str
    temporal: tuple[tuple[str, int], ...] = ()
    spatial: dict[str, dict[str, int]] = field(default_factory=dict)

    def temporal_factor(self, rank: str) -> int:
        return math.prod(f for r, f in self.temporal if r == rank)

    def spatial_factor(self, rank: str) -> int:
        return math.prod(s.get(rank, 1) for s in self.spatial.values())

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "temporal": [[r, f] for r, f in self.temporal],
                "spatial": {k: dict(v) for k, v in self.spatial.items()}}


@dataclass(frozen=True)
class LoopNest:
    """A complete mapping of one LoopProblem: one LevelLoops per storage level, outermost first."""

    einsum: str
    extents: dict[str, int]
    levels: tuple[LevelLoops, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "loopnest", "extents": dict(self.extents), "levels": [lv.to_dict() for lv in self.levels]}

    @classmethod
    def from_dict(cls, einsum: str, data: MappingABC[str, Any]) -> LoopNest:
        where = f"mapping.tiling.{einsum}"
        try:
            levels = tuple(LevelLoops(str(lv["level"]), tuple((str(r), int(f)) for r, f in lv.get("temporal", [])),
                                      {str(k): {str(r): int(f) for r, f in v.items()}
                                       for k, v in dict(lv.get("spatial", {})).items()})
                           for lv in data["levels"])
            extents = {str(r): int(v) for r, v in dict(data["extents"]).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise AccelsimError(f"malformed loop nest: {err}", field=where) from None
        return cls(einsum, extents, levels)

    def inner_first(self) -> tuple[LevelLoops, ...]:
        return tuple(reversed(self.levels))


def validate_nest(nest: LoopNest, problem: LoopProblem, hierarchy: Hierarchy) -> None:
    """Raise one AccelsimError naming the level and sizes when ``nest`` cannot run."""
    where = f"mapping.tiling.{problem.name}"
    names = [lv.name for lv in reversed(hierarchy.levels)]
    if [lv.level for lv in nest.levels] != names:
        raise AccelsimError(f"levels {[lv.level for lv in nest.levels]} do not match the hierarchy",
                            field=f"{where}.levels", allowed=" > ".join(names))
    ranks = set(problem.extents)
    for lv, hw in zip(nest.levels, reversed(hierarchy.levels)):
        for r, f in lv.temporal:
            if r not in ranks:
                raise AccelsimError(f"loop order at level {lv.level} names unknown rank {r!r}",
                                    field=f"{where}.{lv.level}.temporal", allowed=sorted(ranks))
            if f < 1:
                raise AccelsimError(f"factor of rank {r} must be >= 1, got {f}", field=f"{where}.{lv.level}.temporal")
        seen = [r for r, _ in lv.temporal]
        if len(seen) != len(set(seen)):
            raise AccelsimError(f"a rank appears twice in the loop order {seen}", field=f"{where}.{lv.level}.temporal")
        fanouts = {f.name: f for f in hw.fanouts}
        for fname, factors in lv.spatial.items():
            if fname not in fanouts:
                raise AccelsimError(f"level {lv.level} has no fanout {fname!r}", field=f"{where}.{lv.level}.spatial",
                                    allowed=sorted(fanouts) or "none")
            fo = fanouts[fname]
            for r, f in factors.items():
                if r not in ranks:
                    raise AccelsimError(f"spatial unrolling at {lv.level}.{fname} names unknown rank {r!r}",
                                        field=f"{where}.{lv.level}.spatial", allowed=sorted(ranks))
                if fo.allowed_ranks is not None and f > 1 and r not in fo.allowed_ranks:
                    raise AccelsimError(f"fanout {fname} cannot unroll rank {r}",
                                        field=f"{where}.{lv.level}.spatial", allowed=sorted(fo.allowed_ranks))
            used = math.prod(factors.values())
            if used > fo.size and not fo.waves:
                raise AccelsimError(f"spatial unrolling {dict(factors)} uses {used} instances but {lv.level}.{fname} "
                                    f"has {fo.size}", field=f"{where}.{lv.level}.spatial", allowed=f"<= {fo.size}")
    for r in nest.extents:
        if r not in ranks:
            raise AccelsimError(f"unknown rank {r!r}", field=f"{where}.extents", allowed=sorted(ranks))
    for r, e in problem.extents.items():
        padded = nest.extents.get(r, e)
        if padded < e:
            raise AccelsimError(f"extent {padded} of rank {r} is below the problem's {e}", field=f"{where}.extents",
                                allowed=f">= {e} (padding)")
        total = math.prod(lv.temporal_factor(r) * lv.spatial_factor(r) for lv in nest.levels)
        if total != padded:
            raise AccelsimError(f"factors of rank {r} multiply to {total}, not its extent {padded}",
                                field=f"{where}.factors", allowed=f"divisors of {padded} whose product is {padded}")
    check_capacities(nest, problem, hierarchy)


def problem_for(nest: LoopNest, problem: LoopProblem) -> LoopProblem:
    """``problem`` over the nest's extents: a nest may pad ranks up to sizes that tile well."""
    if all(nest.extents.get(r, e) == e for r, e in problem.extents.items()):
        return problem
    return problem.padded({r: nest.extents.get(r, e) for r, e in problem.extents.items()})


def tiles(nest: LoopNest, problem: LoopProblem) -> list[dict[str, int]]:
    """Per storage level (innermost first) the tile extent of every rank."""
    problem = problem_for(nest, problem)
    out, acc = [], {r: 1 for r in problem.extents}
    for lv in nest.inner_first():
        acc = {r: acc[r] * lv.temporal_factor(r) * lv.spatial_factor(r) for r in acc}
        out.append(dict(acc))
    return out


def footprint_bytes(tile: MappingABC[str, int], t: TensorAccess) -> int:
    return t.footprint(tile) * t.dtype_bytes


def capacity_groups(level: StorageLevel, problem: LoopProblem) -> list[tuple[int, tuple[str, ...]]]:
    """(bytes, tensor names sharing them) per key of ``level.capacity_by_tensor`` ("A+C" is shared)."""
    by_role = {role: t.name for t, role in zip(problem.tensors, ROLE_OF_POSITION)}
    return [(int(cap), tuple(by_role[r] for r in key.split("+") if r in by_role))
            for key, cap in (level.capacity_by_tensor or {}).items() if cap is not None]


def check_capacities(nest: LoopNest, problem: LoopProblem, hierarchy: Hierarchy) -> None:
    for hw, tile in zip(hierarchy.levels, tiles(nest, problem)):
        copies = 2 if hw.double_buffered else 1
        need = {t.name: footprint_bytes(tile, t) * copies for t in problem.tensors}
        if hw.capacity_by_tensor is not None:
            for cap, names in capacity_groups(hw, problem):
                if sum(need[n] for n in names) > cap:
                    raise InfeasibleError(
                        f"tile {tile} of {'+'.join(names)} needs {sum(need[n] for n in names)} bytes (x{copies} "
                        f"buffered) at level {hw.name}, which holds {cap} bytes for it", field=f"level {hw.name}",
                        allowed=f"<= {cap}")
        elif hw.capacity_bytes is not None and sum(need.values()) > hw.capacity_bytes:
            raise InfeasibleError(
                f"tile {tile} needs {sum(need.values())} bytes (x{copies} buffered: {need}) at level {hw.name}, "
                f"which holds {hw.capacity_bytes} bytes", field=f"level {hw.name}", allowed=f"<= {hw.capacity_bytes}")
