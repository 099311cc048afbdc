"""How one swept field varies: a list of values, a linear or geometric range, or an interval
that random and Latin-hypercube sampling draw from (see :mod:`accelsim.sweep.spec`).

Why its own module: the forms, their Arrow column types and their sizes are one concern; the
spec module composes them. A range is counted (:meth:`Range.count`) without being built, so a
sweep's size is known, and refused, before anything is allocated.
"""
from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from accelsim.errors import AccelsimError

# A single range may never exceed MAX_RANGE_VALUES values (the sweep's own limit is
# accelsim.sweep.spec.MAX_POINTS).
MAX_RANGE_VALUES = 10_000_000
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce_number(value: Any) -> Any:
    """YAML 1.1 reads ``5e8`` (no dot) as a string; accept it as the number it obviously is."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """Inclusive range: linear with ``step`` or geometric with ``factor``."""

    start: float
    stop: float
    step: float | None = None
    factor: float | None = None

    @model_validator(mode="after")
    def _check(self) -> "Range":
        if (self.step is None) == (self.factor is None):
            raise ValueError("give exactly one of step (linear) or factor (geometric)")
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if self.factor is not None:
            if not self.factor > 1:
                raise ValueError(f"factor must be greater than 1, got {self.factor}")
            if not self.start > 0:
                raise ValueError(f"a geometric range needs a positive start, got {self.start}")
        if self.count() > MAX_RANGE_VALUES:
            count = self.count()
            raise ValueError(f"range has {count:,}" if count < 10**12 else f"range has about {count:.3g}"
                             f" values, more than {MAX_RANGE_VALUES:,}")
        return self

    def count(self) -> int:
        """How many values :meth:`values` gives, computed without making them."""
        tol = 1e-9 * max(abs(self.stop), 1.0)
        if self.step is not None:
            return int((self.stop + tol - self.start) // self.step) + 1
        return int(math.floor(math.log((self.stop + tol) / self.start) / math.log(self.factor) + 1e-12)) + 1

    def values(self) -> list[float | int]:
        ints = all(float(v).is_integer() for v in (self.start, self.stop, self.step or self.factor))
        out: list[float] = []
        tol = 1e-9 * max(abs(self.stop), 1.0)  # so a stop reached by float steps is kept
        i = 0
        while True:
            v = self.start + i * self.step if self.step is not None else self.start * self.factor ** i
            if v > self.stop + tol:
                break
            out.append(v)
            i += 1
            if i > MAX_RANGE_VALUES:  # unreachable after _check; a guard against float surprises
                raise AccelsimError(f"range has more than {MAX_RANGE_VALUES:,} values", field="range")
        return [int(round(v)) for v in out] if ints else out


class Parameter(_Model):
    """How one spec field varies. A bare list in YAML means ``values``."""

    values: list[Any] | None = None
    range: Range | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            return {"values": list(data)}
        if not isinstance(data, dict):
            return {"values": [data]}
        data = dict(data)
        for key in ("low", "high"):
            if key in data:
                data[key] = _coerce_number(data[key])
        if isinstance(data.get("range"), dict):
            data["range"] = {k: _coerce_number(v) for k, v in data["range"].items()}
        return data

    @model_validator(mode="after")
    def _check(self) -> "Parameter":
        given = [self.values is not None, self.range is not None, self.low is not None or self.high is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of: a list of values, range: {start, stop, step|factor}, or low/high")
        if self.values is not None:
            if not self.values:
                raise ValueError("the list of values is empty")
            coerced = [_coerce_number(v) for v in self.values]
            kinds = {_kind(v) for v in coerced}
            if len(kinds) > 1 and kinds != {"int", "float"}:
                raise ValueError(f"values mix types {sorted(kinds)}; one parameter takes one type")
            object.__setattr__(self, "values", coerced)
        if given[2]:
            if self.low is None or self.high is None:
                raise ValueError("an interval needs both low and high")
            if not self.high > self.low:
                raise ValueError(f"high {self.high} must exceed low {self.low}")
            if self.log and not self.low > 0:
                raise ValueError("a log-scale interval needs a positive low")
        return self

    @property
    def is_interval(self) -> bool:
        return self.low is not None

    def choices(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        if self.range is not None:
            return self.range.values()
        raise AccelsimError("an interval (low/high) can only be sampled, use sampling method random or lhs")

    def from_unit(self, u: np.ndarray) -> list[Any]:
        """Map uniform samples in [0, 1) to values: an index into the choices or a point in the interval."""
        if not self.is_interval:
            choices = self.choices()
            idx = np.minimum((u * len(choices)).astype(int), len(choices) - 1)
            return [choices[i] for i in idx]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if self.log else lo + u * (hi - lo)
        return [int(round(v)) for v in x] if self.integer else [float(v) for v in x]

    def dtype(self) -> str:
        """Arrow type name of this parameter's column."""
        if self.is_interval:
            return "int64" if self.integer else "float64"
        choices = self.choices()
        kinds = {_kind(v) for v in choices}
        if kinds == {"int"}:
            if all(-2**63 <= v < 2**63 for v in choices):
                return "int64"
            # Beyond int64: a float64 column when every value is exactly a double (2**70), else
            # the values' decimal text, so no swept value is ever stored rounded or lost.
            return "float64" if all(_exact_double(v) for v in choices) else "string"
        if kinds <= {"int", "float"}:
            return "float64"
        return {"bool": "bool", "str": "string"}.get(kinds.pop(), "string")


def _exact_double(value: int) -> bool:
    try:
        return int(float(value)) == value
    except OverflowError:
        return False


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


class Sampling(_Model):
    method: Literal["grid", "random", "lhs"] = "grid"
    samples: int | None = Field(default=None, gt=0, description="points drawn (random, lhs)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "Sampling":
        if self.method != "grid" and self.samples is None:
            raise ValueError(f"sampling method {self.method} needs 'samples'")
        return self



def latin_hypercube(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n x d samples in [0, 1): each column hits each of the n equal strata exactly once."""
    strata = np.stack([rng.permutation(n) for _ in range(d)], axis=1) if d else np.zeros((n, 0))
    return (strata + rng.random((n, d))) / n


def sampled_columns(params: list[Parameter], sampling: Sampling) -> list[list[Any]]:
    """The value columns of a random or Latin-hypercube sample: seeded, so every process that
    calls this gets the same values (what lets a worker decode sampled points itself)."""
    n = sampling.samples or 0
    rng = np.random.default_rng(sampling.seed)
    unit = rng.random((n, len(params))) if sampling.method == "random" else latin_hypercube(n, len(params), rng)
    return [p.from_unit(unit[:, j]) for j, p in enumerate(params)]
