"""Checks every user-written spec or configuration shares: no booleans where numbers belong,
and physically meaningful ranges for rates, bandwidths and clocks.

Why booleans: pydantic's lax mode reads ``True`` as ``1`` for int and float fields, and YAML 1.1
reads ``yes``/``no``/``on``/``off``/``true`` as booleans, so ``bandwidth_bytes_per_s: yes`` would
silently be 1 B/s and ``rows: true`` a one-row array. Strict mode would reject them but also
reject the ints YAML gives for float fields and the strings PyYAML gives for ``1e9`` (YAML 1.1
needs ``1.0e9``), so a before-validator that refuses exactly booleans is used instead.

Why ranges: a positive-only bound lets ``1e-300`` through, and a time ``flops / 1e-300``
overflows to infinity, which JSON cannot carry. The bounds below are far outside every real
device (cited per bound) but keep every derived time, cycle count and byte count finite.
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationInfo, field_validator

# Clocks: 1 kHz .. 100 GHz. The fastest digital logic clocks are a few GHz (IBM z15 at 5.2 GHz,
# IEEE ISSCC 2020); nothing clocked below 1 kHz is an accelerator.
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1e3, 1e11
# Bandwidths: 1 kB/s .. 1 EB/s (1e18). The largest published on-chip memory bandwidth is
# Cerebras WSE-3's 21 PB/s = 2.1e16 B/s (Cerebras WSE-3 product brief, 2024).
MIN_BYTES_PER_S, MAX_BYTES_PER_S = 1e3, 1e18
# Compute rates: 1 kFLOP/s .. 1e20 FLOP/s. The largest single device is WSE-3 at 125 PFLOP/s
# = 1.25e17 (same brief); 1e20 leaves 800x headroom.
MIN_FLOPS_PER_S, MAX_FLOPS_PER_S = 1e3, 1e20
# Per-cycle rates (bytes or operations per cycle per unit): 1e-6 .. 1e9. SCALE-Sim configs use
# 1..100 words/cycle; a per-cycle rate below one per million cycles is a unit mistake.
MIN_PER_CYCLE, MAX_PER_CYCLE = 1e-6, 1e9
# Sequence lengths (tokens): the longest context of any released model is Llama 4 Scout's 10M
# tokens (Meta, "The Llama 4 herd", April 2025); 2**24 = 16,777,216 bounds every seq and context
# with headroom, so shapes, byte counts and simulated times stay bounded.
MAX_TOKENS = 2**24
# Sequences in one batch: far above any serving batch (vLLM's default max_num_seqs is 256).
MAX_BATCH = 2**20
# Achievable fractions of a peak: at least 0.1% (below it a "peak" is meaningless).
MIN_EFFICIENCY = 1e-3

ClockHz = Annotated[float, Field(ge=MIN_CLOCK_HZ, le=MAX_CLOCK_HZ)]
BytesPerS = Annotated[float, Field(ge=MIN_BYTES_PER_S, le=MAX_BYTES_PER_S)]
FlopsPerS = Annotated[float, Field(ge=MIN_FLOPS_PER_S, le=MAX_FLOPS_PER_S)]
PerCycle = Annotated[float, Field(ge=MIN_PER_CYCLE, le=MAX_PER_CYCLE)]
Efficiency = Annotated[float, Field(ge=MIN_EFFICIENCY, le=1)]


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field of this type may legitimately hold a boolean."""
    if annotation is bool or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _accepts_bool(get_args(annotation)[0])
    if origin is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(_accepts_bool(a) for a in get_args(annotation))
    return False


def _is_numeric(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_numeric(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_numeric(a) for a in get_args(annotation))
    return annotation in (int, float)


def find_bool(value: Any, annotation: Any, path: str = "") -> str | None:
    """The path (``""`` for the value itself) of a boolean inside ``value`` where ``annotation``
    wants a number, or None. Containers are followed (``dict[str, float]``, ``list[int]``)."""
    if isinstance(value, bool):
        return path if _is_numeric(annotation) and not _accepts_bool(annotation) else None
    origin = get_origin(annotation)
    if origin is Annotated:
        return find_bool(value, get_args(annotation)[0], path)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(value, dict) and get_origin(arg) is dict or isinstance(value, list) and get_origin(arg) is list:
                return find_bool(value, arg, path)
        return None
    if origin is dict and isinstance(value, dict):
        inner = get_args(annotation)[1] if get_args(annotation) else Any
        for k, v in value.items():
            hit = find_bool(v, inner, f"{path}.{k}" if path else str(k))
            if hit is not None:
                return hit
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = get_args(annotation)
        inner = args[0] if args else Any
        for i, v in enumerate(value):
            hit = find_bool(v, inner, f"{path}[{i}]")
            if hit is not None:
                return hit
    return None


class NoBoolNumbers(BaseModel):
    """Base model: a boolean given for a numeric field (or inside a numeric table) is an error."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or isinstance(value, BaseModel):
            return value
        hit = find_bool(value, field.annotation)
        if hit is not None:
            where = f" at {hit}" if hit else ""
            raise ValueError(f"must be a number, not a boolean{where} (YAML reads yes/no/on/off/true/false "
                             "as booleans)")
        return value
