"""Views of the IR that engines and mappers share: the shape of one attention layer.

Why in the IR: the spatial attention engine, the FuseMax mapper and the cascade builders all
speak of an attention layer by its ranks (B, H, M, P, E, F); if it lived in ``workloads/`` the
engines would have to import a workload module to name it.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import AccelsimError


MAX_SEQ = 2**24  # tokens: bounds every expansion of a layer's tiles in time and memory
MAX_RANK = 2**53  # batch, heads, head dims: exact as doubles


@dataclass(frozen=True)
class AttentionShape:
    """One attention layer's ranks; M = P for self-attention."""

    b: int
    h: int
    m: int
    p: int
    e: int
    f: int

    def __post_init__(self) -> None:
        for name in ("b", "h", "m", "p", "e", "f"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise AccelsimError(f"must be a positive integer, got {value!r}", field=f"attention.{name}")
            limit = MAX_SEQ if name in ("m", "p") else MAX_RANK
            if value > limit:
                raise AccelsimError(f"{value} is too large", field=f"attention.{name}",
                                    allowed=f"at most {limit:,}" + (" tokens (2**24)" if limit == MAX_SEQ else " (2**53)"))


@dataclass(frozen=True)
class AttentionModel:
    """The dimensions of one model's attention layer (the FuseMax artifact's workloads)."""

    name: str
    d_model: int
    heads: int
    e: int
    f: int
    ffn: int

    def shape(self, seq: int, batch: int = 64) -> AttentionShape:
        from accelsim.fieldchecks import MAX_BATCH, MAX_TOKENS

        for label, value, limit in (("seq", seq, MAX_TOKENS), ("batch", batch, MAX_BATCH)):
            if isinstance(value, int) and value > limit:
                raise AccelsimError(f"{value} is above the supported {limit:,}", field=label, allowed=f"1..{limit}")
        return AttentionShape(b=batch, h=self.heads, m=seq, p=seq, e=self.e, f=self.f)
