"""A sweep's points decoded from their index, so workers build their own points.

Why: expanding every point in the sweep process (validating each design's hardware, hashing its
key) ran serially before any worker started and held about a fifth of all the CPU of a cheap
sweep, which capped how far two workers could beat one. A grid is a cartesian product and a
sample is seeded, so point ``i`` can be computed from ``i`` alone: the sweep process ships one
small :class:`PointSource` to each worker once, then sends only ``(start, stop)`` index ranges.

Indices here are *raw*: ``raw = row * n_workloads + workload``, over every parameter row before
constraints and de-duplication, in exactly the order :meth:`accelsim.sweep.spec.SweepSpec.points`
walks them (``itertools.product`` order, the last parameter fastest). A raw index whose point a
constraint removes decodes to ``None``. ``SweepSpec.points`` stays the reference expansion;
``tests/test_sweep_decode.py`` checks that both give the same point, key and hardware for each
index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import accelsim
from accelsim.errors import AccelsimError
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.parameters import Parameter, Sampling, sampled_columns
from accelsim.sweep.spec import (
    Point,
    PointKeys,
    SweepSpec,
    _truth,
    apply_params,
    canonical_json,
    flatten_paths,
)
from accelsim.sweep.workloads import normalize_workloads, workload_fingerprint


@dataclass
class PointSource:
    """Everything needed to decode any point of one sweep; pickled once per worker.

    Per process it caches its decoded rows' validated hardware (the points of one parameter row
    share it, one per workload), the compiled constraints and the sampled columns.
    """

    names: list[str]
    grid: list[list[Any]] | None  # the choices of each parameter (grid sampling), else None
    parameters: list[Parameter]
    sampling: Sampling
    bases: dict[str, dict[str, Any]]
    overrides: dict[str, Any]
    options: dict[str, Any]
    workloads: list[dict[str, Any]]
    workload_parts: list[dict[str, str]]
    keys: PointKeys
    constraints: list[str]
    n_rows: int
    _columns: list[list[Any]] | None = field(default=None, repr=False)
    _compiled: list[Any] | None = field(default=None, repr=False)
    _row_cache: tuple[int, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, spec: SweepSpec, engine_fingerprint: str) -> PointSource:
        """Built in the sweep process: loads the base designs and fingerprints the workloads once
        (no point is expanded here)."""
        names = list(spec.parameters)
        params = [spec.parameters[n] for n in names]
        grid = [p.choices() for p in params] if spec.sampling.method == "grid" else None
        if not names:
            n_rows = 1
        elif grid is not None:
            n_rows = 1
            for choices in grid:
                n_rows *= len(choices)
        else:
            n_rows = spec.sampling.samples or 0
        workloads = normalize_workloads(spec.workloads, allow_code=spec.allow_code)
        common = {"evaluator": spec.evaluator.name, "metrics": spec.metrics, "derived": spec.derived,
                  "accelsim": accelsim.__version__, "engine": engine_fingerprint}
        keys = PointKeys(common)
        parts = [keys.workload_parts(w, workload_fingerprint(w, spec.allow_code)) for w in workloads]
        return cls(names, grid, params, spec.sampling, spec._bases(), dict(spec.overrides),
                   dict(spec.evaluator.options), workloads, parts, keys, list(spec.constraints), n_rows)

    @property
    def raw_count(self) -> int:
        return self.n_rows * len(self.workloads)

    def params_of_row(self, row: int) -> dict[str, Any]:
        """Parameter row ``row`` in ``itertools.product`` order (grid) or sample order."""
        if not 0 <= row < self.n_rows:
            raise IndexError(f"parameter row {row} outside 0..{self.n_rows - 1}")
        if not self.names:
            return {}
        if self.grid is not None:
            picked = []
            for choices in reversed(self.grid):  # the last parameter varies fastest
                row, digit = divmod(row, len(choices))
                picked.append(choices[digit])
            return dict(zip(self.names, reversed(picked)))
        if self._columns is None:
            self._columns = sampled_columns(self.parameters, self.sampling)
        return {name: column[row] for name, column in zip(self.names, self._columns)}

    def _row(self, row: int) -> tuple[dict[str, Any], dict[str, Any], Any, dict[str, Any], dict[str, str]]:
        """(params, hardware dict, validated hardware, options, key parts) of a parameter row, cached
        for the row last asked for (consecutive raw indices share it)."""
        if self._row_cache is not None and self._row_cache[0] == row:
            return self._row_cache[1]
        params = self.params_of_row(row)
        hw, options, hardware = apply_params(self.bases, self.overrides, self.options, params)
        value = (params, hw, hardware, options, self.keys.row_parts(hw, options))
        self._row_cache = (row, value)
        return value

    def decode(self, raw: int) -> tuple[Point, Any] | None:
        """The point at raw index ``raw`` and its validated hardware spec, or None if a constraint
        removes it. ``Point.index`` is the raw index. A design the hardware model refuses raises
        AccelsimError naming the point."""
        row, w = divmod(raw, len(self.workloads))
        params, hw, hardware, options, row_parts = self._row(row)
        if self._compiled is None:
            self._compiled = [compile_expression(t, f"constraints[{i}]") for i, t in enumerate(self.constraints)]
        workload = self.workloads[w]
        if self._compiled:
            env = {**flatten_paths(hw), **params, "workload": workload["label"]}
            if not all(_truth(c, env) for c in self._compiled):
                return None
        key = self.keys.key(row_parts, self.workload_parts[w])
        return Point(raw, key, dict(params), hw, workload, options), hardware

    def invalid_key(self, raw: int) -> str:
        """The key of a point whose design the hardware model refuses: a hash of what defines it
        (base designs, overrides, parameters, workload, the evaluator's common key parts)."""
        import hashlib

        row, w = divmod(raw, len(self.workloads))
        payload = {"invalid": True, "bases": self.bases, "overrides": self.overrides, "options": self.options,
                   "params": self.params_of_row(row), "workload": self.workload_parts[w], "common": self.keys._common}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:24]

    def check_values(self) -> None:
        """Fail before any work if one swept value alone makes the design invalid: each value of each
        parameter (each end of an interval) applied to the base and validated. Costs one
        validation per value, not per point; combinations that only fail together (cross-field
        checks) become those points' error rows instead."""
        for name, param in zip(self.names, self.parameters):
            if name == "hardware":
                continue
            values = param.choices() if not param.is_interval else param.from_unit(np.array([0.0, 1 - 1e-12]))
            base = {n: self.params_of_row(0)[n] for n in self.names if n == "hardware"}
            for value in values:
                apply_params(self.bases, self.overrides, self.options, {**base, name: value})


def no_points_error(skipped: int) -> AccelsimError:
    return AccelsimError(f"no design points left ({skipped} removed by constraints)",
                         field="parameters" if not skipped else "constraints")
