"""Tensor, Einsum, Graph: the one data model for work.

Every workload (a GEMM, a convolution, an attention cascade, a whole transformer) is a Graph of
Einsums over Tensors. FLOPs, bytes, reuse and arithmetic intensity are derived here from rank
extents, so no operator ever carries a hand-typed cost.

Index expressions: an operand names, for each dimension of its tensor, either a rank of the
Einsum (``"m"``) or an affine combination of ranks (``"2*p+r"``, ``"p+r-1"``), which is how a
convolution's sliding window reads its input. Plain ranks must match the tensor's extent
exactly; an affine index must cover the tensor's dimension (reaching outside it is padding).
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from accelsim.errors import AccelsimError


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class OpKind(str, Enum):
    """What an Einsum does at each point of its iteration space."""

    MAC = "mac"  # multiply-accumulate: out += a * b
    MUL = "mul"
    ADD = "add"
    SUB = "sub"
    MAX = "max"
    EXP = "exp"
    DIV = "div"
    COPY = "copy"  # data movement only (reshape, transpose, cache write)
    ACTIVATION = "activation"  # GELU, SiLU and similar pointwise non-linearities
    NORM = "norm"  # layer/RMS norm as a vector pass
    ALLREDUCE = "allreduce"  # collective across tensor-parallel devices


# Arithmetic per iteration point. A MAC is two FLOPs (multiply and add), the usual convention
# (for example in the FlashAttention and GenZ FLOP counts); pure movement does no arithmetic.
FLOPS_PER_POINT: dict[OpKind, int] = {
    OpKind.MAC: 2,
    OpKind.MUL: 1,
    OpKind.ADD: 1,
    OpKind.SUB: 1,
    OpKind.MAX: 1,
    OpKind.EXP: 1,
    OpKind.DIV: 1,
    OpKind.COPY: 0,
    OpKind.ACTIVATION: 1,
    OpKind.NORM: 1,
    OpKind.ALLREDUCE: 1,
}


class TensorRole(str, Enum):
    """Why a tensor exists; decides whether it may lack a producer."""

    INPUT = "input"  # graph input (an image, token embeddings)
    WEIGHT = "weight"
    KV_CACHE = "kv_cache"
    ACTIVATION = "activation"  # produced and consumed inside the graph
    OUTPUT = "output"


SOURCE_ROLES = frozenset({TensorRole.INPUT, TensorRole.WEIGHT, TensorRole.KV_CACHE})


@dataclass(frozen=True)
class Tensor:
    """A dense tensor: named dimensions with extents, an element size and a role."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype_bytes: int = 2
    role: TensorRole = TensorRole.ACTIVATION

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(self.dims))
        for extent in self.shape:
            if not _is_int(extent):
                raise AccelsimError(f"extents must be integers, got {extent!r}", field=f"tensor {self.name}.shape")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "role", TensorRole(self.role))
        if not self.name:
            raise AccelsimError("a tensor needs a name", field="tensor.name")
        if len(self.dims) != len(self.shape):
            raise AccelsimError(
                f"{len(self.dims)} dims {self.dims} but {len(self.shape)} extents {self.shape}",
                field=f"tensor {self.name}.shape",
            )
        for dim, extent in zip(self.dims, self.shape):
            if extent <= 0:
                raise AccelsimError(
                    f"extent of dim {dim!r} must be positive, got {extent}", field=f"tensor {self.name}.shape"
                )
        if self.dtype_bytes <= 0:
            raise AccelsimError(f"must be positive, got {self.dtype_bytes}", field=f"tensor {self.name}.dtype_bytes")

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return self.elements * self.dtype_bytes

    def extent(self, dim: str) -> int:
        return self.shape[self.dims.index(dim)]


_TERM = re.compile(r"^\s*([+-]?)\s*(?:(\d+)\s*\*\s*)?([A-Za-z_][A-Za-z_0-9]*|\d+)\s*$")


@dataclass(frozen=True)
class AffineIndex:
    """``sum(coef * rank) + offset``, parsed from text such as ``2*p+r-1``."""

    coefs: tuple[tuple[str, int], ...]
    offset: int = 0

    @classmethod
    def parse(cls, text: str) -> "AffineIndex":
        terms = re.findall(r"[+-]?[^+-]+", text.replace(" ", ""))
        coefs: dict[str, int] = {}
        offset = 0
        for term in terms:
            match = _TERM.match(term)
            if not match:
                raise AccelsimError(f"cannot parse index expression {text!r}", field="operand.index")
            sign = -1 if match.group(1) == "-" else 1
            coef = int(match.group(2) or 1) * sign
            name = match.group(3)
            if name.isdigit():
                offset += coef * int(name)
            else:
                coefs[name] = coefs.get(name, 0) + coef
        return cls(tuple(sorted(coefs.items())), offset)

    @property
    def ranks(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.coefs)

    def span(self, extents: Mapping[str, int]) -> tuple[int, int]:
        """Smallest and largest value the index takes over the iteration space."""
        lo = hi = self.offset
        for rank, coef in self.coefs:
            reach = coef * (extents[rank] - 1)
            lo += min(0, reach)
            hi += max(0, reach)
        return lo, hi


@dataclass(frozen=True)
class Operand:
    """One tensor as an Einsum sees it: an index expression per tensor dimension."""

    tensor: Tensor
    index: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", tuple(self.index))
        if len(self.index) != len(self.tensor.dims):
            raise AccelsimError(
                f"index {self.index} has {len(self.index)} entries for {len(self.tensor.dims)} dims",
                field=f"operand {self.tensor.name}.index",
            )

    @cached_property
    def affine(self) -> tuple[AffineIndex, ...]:
        return tuple(AffineIndex.parse(i) for i in self.index)

    @property
    def ranks(self) -> frozenset[str]:
        """Every rank this operand's index depends on."""
        return frozenset(r for a in self.affine for r in a.ranks)


@dataclass(frozen=True)
class Einsum:
    """``output[index] op= f(inputs[index]...)`` over the iteration space ``extents``.

    ``attrs`` carries what the algebra does not: for example ``{"kind": "conv", "stride": 2}``
    for reporting, or a collective's participant count.
    """

    name: str
    output: Operand
    inputs: tuple[Operand, ...]
    extents: Mapping[str, int]
    op: OpKind = OpKind.MAC
    attrs: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "extents", dict(self.extents))
        object.__setattr__(self, "op", OpKind(self.op))
        where = f"einsum {self.name}"
        for rank, extent in self.extents.items():
            if not _is_int(extent) or extent <= 0:
                raise AccelsimError(f"extent of rank {rank!r} must be a positive integer, got {extent!r}", field=where)
        used = frozenset().union(*(o.ranks for o in (self.output, *self.inputs)))
        unused = sorted(set(self.extents) - used)
        if unused:
            # An extent no operand indexes would multiply the FLOP count without moving data.
            raise AccelsimError(f"ranks {unused} appear in no operand's index", field=where, allowed=sorted(used))
        for operand in (self.output, *self.inputs):
            for dim, affine, extent in zip(operand.tensor.dims, operand.affine, operand.tensor.shape):
                missing = [r for r in affine.ranks if r not in self.extents]
                if missing:
                    raise AccelsimError(
                        f"operand {operand.tensor.name} uses ranks {missing} with no extent",
                        field=where, allowed=sorted(self.extents),
                    )
                lo, hi = affine.span(self.extents)
                if len(affine.coefs) == 1 and affine.coefs[0][1] == 1 and affine.offset == 0:
                    if hi + 1 != extent:
                        raise AccelsimError(
                            f"operand {operand.tensor.name} dim {dim!r} has extent {extent} but rank "
                            f"{affine.ranks[0]!r} spans {hi + 1}", field=where,
                        )
                elif hi < 0 or lo > extent - 1:
                    raise AccelsimError(
                        f"operand {operand.tensor.name} dim {dim!r} (extent {extent}) lies outside "
                        f"index {operand.index[operand.tensor.dims.index(dim)]!r} spanning [{lo}, {hi}]",
                        field=where,
                    )
        if self.output.tensor.name in {i.tensor.name for i in self.inputs} and self.op is not OpKind.ALLREDUCE:
            raise AccelsimError("an einsum may not read the tensor it writes", field=where)

    # --- derived quantities -------------------------------------------------------------
    @property
    def points(self) -> int:
        """Size of the iteration space."""
        return math.prod(self.extents.values())

    @property
    def flops(self) -> int:
        return self.points * FLOPS_PER_POINT[self.op]

    @property
    def macs(self) -> int:
        return self.points if self.op is OpKind.MAC else 0

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(o.tensor for o in (*self.inputs, self.output))

    @property
    def input_bytes(self) -> int:
        """Each distinct input tensor once, even if it is read through several operands (x * x)."""
        return sum({o.tensor.name: o.tensor.bytes for o in self.inputs}.values())

    @property
    def output_bytes(self) -> int:
        return self.output.tensor.bytes

    @property
    def bytes(self) -> int:
        """Compulsory traffic: every operand touched once."""
        return self.input_bytes + self.output_bytes

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per compulsory byte."""
        return self.flops / self.bytes if self.bytes else math.inf

    def reuse(self) -> dict[str, float]:
        """How many iteration points touch each element of each operand, on average."""
        return {o.tensor.name: self.points / o.tensor.elements for o in (*self.inputs, self.output)}

    def reduction_ranks(self) -> frozenset[str]:
        return frozenset(self.extents) - self.output.ranks

    def as_gemm(self) -> "GemmShape":
        """View a two-input MAC Einsum as ``batch`` GEMMs of M x K times K x N.

        The filter (B) operand is the weight if exactly one input is a weight, else the second
        input; M collects ranks of the output and A only, N those of the output and B only, K
        the reduced ranks, batch the ranks shared by all three. This is SCALE-Sim's im2col
        lowering for a convolution: M = output pixels, K = R*S*C, N = filters.
        """
        if self.op is not OpKind.MAC or len(self.inputs) != 2:
            raise AccelsimError(
                f"only a two-input multiply-accumulate maps to a GEMM, got {self.op.value} with "
                f"{len(self.inputs)} inputs", field=f"einsum {self.name}",
            )
        a, b = self.inputs
        if a.tensor.role is TensorRole.WEIGHT and b.tensor.role is not TensorRole.WEIGHT:
            a, b = b, a
        out = self.output.ranks
        m = [r for r in self.extents if r in out and r in a.ranks and r not in b.ranks]
        n = [r for r in self.extents if r in out and r in b.ranks and r not in a.ranks]
        k = [r for r in self.extents if r not in out]
        batch = [r for r in self.extents if r in out and r in a.ranks and r in b.ranks]
        stray = set(self.extents) - set(m) - set(n) - set(k) - set(batch)
        if stray:
            raise AccelsimError(f"ranks {sorted(stray)} fit no GEMM role", field=f"einsum {self.name}")
        size = lambda ranks: math.prod(self.extents[r] for r in ranks)  # noqa: E731
        return GemmShape(m=size(m), k=size(k), n=size(n), batch=size(batch),
                         ifmap=a.tensor.name, filter=b.tensor.name, ofmap=self.output.tensor.name)


@dataclass(frozen=True)
class GemmShape:
    """``batch`` independent products of an M x K ifmap and a K x N filter."""

    m: int
    k: int
    n: int
    batch: int = 1
    ifmap: str = "ifmap"
    filter: str = "filter"
    ofmap: str = "ofmap"

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.k * self.n


class Graph:
    """A validated DAG of Einsums.

    The einsum order given is kept as the framework's default schedule; it need not be
    topological (``topological_order`` gives one). Tensors with role input, weight or KV cache
    may lack a producer; every other tensor must be produced exactly once.
    """

    def __init__(self, name: str, einsums: Iterable[Einsum]) -> None:
        self.name = name
        self.einsums: tuple[Einsum, ...] = tuple(einsums)
        self._validate()

    def _validate(self) -> None:
        where = f"graph {self.name}"
        if not self.einsums:
            raise AccelsimError("has no einsums", field=where)
        names = [e.name for e in self.einsums]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise AccelsimError(f"einsum names repeat: {sorted(dup)}", field=where)
        self.tensors: dict[str, Tensor] = {}
        for e in self.einsums:
            for t in e.tensors:
                seen = self.tensors.setdefault(t.name, t)
                if seen != t:
                    raise AccelsimError(f"tensor {t.name!r} is declared twice with different shapes or roles",
                                        field=where)
        self.producer: dict[str, Einsum] = {}
        for e in self.einsums:
            name = e.output.tensor.name
            if name in self.producer:
                raise AccelsimError(f"tensor {name!r} is produced by both {self.producer[name].name!r} and "
                                    f"{e.name!r}", field=where)
            self.producer[name] = e
        self.consumers: dict[str, list[Einsum]] = {t: [] for t in self.tensors}
        for e in self.einsums:
            for o in e.inputs:
                self.consumers[o.tensor.name].append(e)
        for t in self.tensors.values():
            if t.name not in self.producer and t.role not in SOURCE_ROLES:
                raise AccelsimError(
                    f"tensor {t.name!r} (role {t.role.value}) has no producer", field=where,
                    allowed="a producing einsum, or role input, weight or kv_cache",
                )
        self._topo = self._topological_order()

    def _topological_order(self) -> tuple[Einsum, ...]:
        position = {e.name: i for i, e in enumerate(self.einsums)}
        preds = {e.name: {self.producer[o.tensor.name].name for o in e.inputs if o.tensor.name in self.producer}
                 for e in self.einsums}
        done: list[Einsum] = []
        ready = sorted((n for n, p in preds.items() if not p), key=position.get)
        remaining = {n: set(p) for n, p in preds.items()}
        by_name = {e.name: e for e in self.einsums}
        succ: dict[str, list[str]] = {n: [] for n in preds}
        for n, ps in preds.items():
            for p in ps:
                succ[p].append(n)
        while ready:
            n = ready.pop(0)
            done.append(by_name[n])
            for s in succ[n]:
                remaining[s].discard(n)
                if not remaining[s]:
                    ready.append(s)
            ready.sort(key=position.get)
        if len(done) != len(self.einsums):
            cyclic = sorted(n for n, p in remaining.items() if p)
            raise AccelsimError(f"has a cycle through einsums {cyclic}", field=f"graph {self.name}")
        return tuple(done)

    # --- queries ----------------------------------------------------------------------
    def topological_order(self) -> tuple[Einsum, ...]:
        """The given order when it is topological, otherwise the stable topological sort of it."""
        return self._topo

    def einsum(self, name: str) -> Einsum:
        for e in self.einsums:
            if e.name == name:
                return e
        raise AccelsimError(f"no einsum named {name!r}", field=f"graph {self.name}",
                            allowed=[e.name for e in self.einsums])

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """Tensors read but never produced (activations in, weights, caches)."""
        return tuple(t for t in self.tensors.values() if t.name not in self.producer)

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        """Tensors produced but never read inside the graph."""
        return tuple(t for t in self.tensors.values() if t.name in self.producer and not self.consumers[t.name])

    @property
    def flops(self) -> int:
        return sum(e.flops for e in self.einsums)

    @property
    def macs(self) -> int:
        return sum(e.macs for e in self.einsums)

    def tensor_bytes(self, roles: Sequence[TensorRole] | None = None) -> int:
        return sum(t.bytes for t in self.tensors.values() if roles is None or t.role in roles)

    @property
    def compulsory_bytes(self) -> int:
        """Graph inputs read once plus graph outputs written once."""
        return sum(t.bytes for t in self.inputs) + sum(t.bytes for t in self.outputs)

    def __len__(self) -> int:
        return len(self.einsums)

    def __iter__(self):
        return iter(self.einsums)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.einsums)} einsums, {len(self.tensors)} tensors)"


# --- builders for the common kinds ----------------------------------------------------------
