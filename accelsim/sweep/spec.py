"""What a sweep is: a base design, the parameters to vary, the workloads, the evaluator, the metrics.

The same model is the YAML file and the Python API (``SweepSpec(...)`` or
``SweepSpec.from_yaml(path)``). ``points()`` expands it into concrete design points, each with the
full hardware dict it evaluates and a key that hashes its complete input, so results can be
reused across runs safely (see :mod:`accelsim.sweep.store`).

Parameters are addressed by their path in the hardware spec (``array.rows``, ``sram.ifmap_bytes``,
``dram.bandwidth_bytes_per_cycle``, ``clock_hz``), by ``hardware`` (the preset or file itself) or
by ``options.<name>`` (an evaluator/mapper option). A value is given as

- a list: ``array.rows: [16, 32, 64]``;
- a linear range, stop included: ``{range: {start: 16, stop: 64, step: 16}}``;
- a geometric range, stop included: ``{range: {start: 16, stop: 256, factor: 2}}``;
- a continuous interval (random and Latin-hypercube sampling only): ``{low: 0.5e9, high: 1e9,
  log: false, integer: false}``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

import accelsim
from accelsim.errors import AccelsimError
from accelsim.hardware.base import read_yaml, spec_from_dict
from accelsim.hardware import load_hardware
from accelsim.sweep.expr import Expression, compile_expression
from accelsim.sweep.parameters import (MAX_RANGE_VALUES, Parameter, Range, Sampling, _coerce_number,  # noqa: F401
                                       _Model, latin_hypercube, sampled_columns)
from accelsim.sweep.workloads import normalize_workloads, workload_fingerprint
from accelsim.yamlio import validation_error

# Fields that name or describe a design rather than parameterize it: not sweepable, not hashed
# as parameters (they are still part of the hardware dict that is hashed).
DESCRIPTIVE_FIELDS = ("kind", "name", "description", "sources")
# Columns every results table has; a parameter or metric may not reuse these names.
RESERVED_COLUMNS = ("point", "key", "status", "error", "workload", "evaluator")
# A sweep above MAX_POINTS points (after the grid or sampling, times workloads, before
# constraints) is refused before anything is allocated: a typo such as a range step of 1 instead
# of 1024 would otherwise fill memory. ``max_points`` (``--max-points``) raises it per run. A
# single range may never exceed MAX_RANGE_VALUES values.
MAX_POINTS = 1_000_000
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}$")


class EvaluatorSpec(_Model):
    """The evaluator (engine or mapper + engine) that scores a point, and its fixed options."""

    name: str = "systolic"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


@dataclass(frozen=True)
class Point:
    """One design point, everything a worker needs, JSON-able."""

    index: int
    key: str
    params: dict[str, Any]
    hardware: dict[str, Any]
    workload: dict[str, Any]
    options: dict[str, Any]

    @property
    def workload_label(self) -> str:
        return self.workload["label"]


class SweepSpec(_Model):
    """A design-space sweep. See the module docstring for the parameter forms."""

    name: str = "sweep"
    hardware: str | dict[str, Any] = Field(default="tpu-v1", description="base: preset name, YAML path or dict")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fixed path -> value on the base")
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    sampling: Sampling = Field(default_factory=Sampling)
    workloads: list[Any] = Field(default_factory=lambda: ["example"])
    evaluator: EvaluatorSpec = Field(default_factory=EvaluatorSpec)
    metrics: list[str] | None = Field(default=None, description="metric columns to keep; None keeps all")
    derived: dict[str, str] = Field(default_factory=dict, description="column -> expression over params+metrics")
    constraints: list[str] = Field(default_factory=list, description="expressions every kept point satisfies")
    # Whether ``module:function`` builders/evaluators may be imported (accelsim.sweep.plugins).
    # Not a field: it is the caller's decision, not part of the file, and not part of any key.
    _allow_code: bool = PrivateAttr(default=False)
    _max_points: int = PrivateAttr(default=MAX_POINTS)

    @property
    def allow_code(self) -> bool:
        return self._allow_code

    def permitting_code(self) -> "SweepSpec":
        """A copy whose ``module:function`` references may be imported (the Python-API opt-in)."""
        copy = self.model_copy()
        copy._allow_code = True
        return copy

    def with_max_points(self, max_points: int) -> "SweepSpec":
        """A copy that may expand to ``max_points`` points (default :data:`MAX_POINTS`)."""
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
            raise AccelsimError(f"must be a positive integer, got {max_points!r}", field="max_points")
        copy = self.model_copy()
        copy._max_points = max_points
        copy._check_point_count()
        return copy

    def point_count(self) -> int:
        """Points before constraints and de-duplication (grid size or samples, times workloads),
        computed without expanding anything."""
        workloads = sum(len(w["gemms"]) if isinstance(w, dict) and isinstance(w.get("gemms"), list) else 1
                        for w in self.workloads)
        if self.sampling.method != "grid":
            return (self.sampling.samples or 0) * workloads
        total = workloads
        for param in self.parameters.values():
            if param.values is not None:
                total *= len(param.values)
            elif param.range is not None:
                total *= param.range.count()
        return total

    def _check_point_count(self) -> None:
        n = self.point_count()
        if n > self._max_points:
            field = "sampling.samples" if self.sampling.method != "grid" else "parameters"
            raise AccelsimError(f"the sweep has {n:,} points, more than the limit of {self._max_points:,}; "
                                "raise it with --max-points (max_points= in the Python API) if that is meant",
                                field=field)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        """The name is the results directory under ``sweeps/`` when ``--out`` is omitted, so it
        must be one plain directory name: ``../x`` or ``/etc`` would write outside ``sweeps/``."""
        if not _SAFE_NAME.match(value) or value in (".", ".."):
            raise ValueError(f"{value[:80]!r} is not a plain directory name: use letters, digits and . _ + - "
                             "(at most 100, not starting with . or -), or give --out")
        return value

    @field_validator("overrides")
    @classmethod
    def _coerce_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {k: _coerce_number(v) for k, v in value.items()}

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<sweep>", *, allow_code: bool = False,
                  max_points: int = MAX_POINTS) -> "SweepSpec":
        """Validate ``data``; ``allow_code`` lets its ``module:function`` references be imported
        (never the default: a sweep file is data, see :mod:`accelsim.sweep.plugins`)."""
        if not isinstance(data, dict):
            raise AccelsimError("a sweep file is a mapping at top level", source=source)
        try:
            spec = cls.model_validate(data)
        except ValidationError as err:
            problem = validation_error(err, source)
            first = err.errors()[0]
            if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:  # a misspelled top-level key
                problem = AccelsimError(problem.detail, field=problem.field, source=source,
                                        allowed=sorted(cls.model_fields))
            raise problem from None
        spec._allow_code = allow_code
        spec._max_points = max_points
        spec.check()
        return spec

    @classmethod
    def from_yaml(cls, path: str | Path, *, allow_code: bool = False, max_points: int = MAX_POINTS) -> "SweepSpec":
        return cls.from_dict(read_yaml(Path(path)), source=str(path), allow_code=allow_code, max_points=max_points)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the YAML file would say it: defaults left out, value lists as plain lists."""
        data = self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        data["parameters"] = {
            path: (list(p.values) if p.values is not None
                   else p.model_dump(mode="json", exclude_defaults=True, exclude_none=True))
            for path, p in self.parameters.items()}
        if not data["parameters"]:
            data.pop("parameters")
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    # --- validation that needs the hardware ---------------------------------------------
    def base_hardware(self, preset: str | None = None) -> dict[str, Any]:
        """The base design as a plain dict (``preset`` replaces ``hardware`` when it is swept)."""
        base = preset if preset is not None else self.hardware
        if isinstance(base, dict):
            return spec_from_dict(base, source="sweep hardware").model_dump(mode="json")
        return load_hardware(base).model_dump(mode="json")

    def _bases(self) -> dict[str, dict[str, Any]]:
        if "hardware" in self.parameters:
            names = self.parameters["hardware"].choices()
            return {str(n): self.base_hardware(str(n)) for n in names}
        return {"": self.base_hardware()}

    def check(self) -> None:
        """Every error a sweep can catch without running a point, raised as one AccelsimError."""
        self._check_point_count()
        bases = self._bases()
        valid = sorted(set.intersection(*(set(hardware_paths(b)) for b in bases.values())))
        for path, value in self.overrides.items():
            if path not in valid:
                raise AccelsimError(f"unknown parameter path {path!r}", field="overrides", allowed=valid)
        for path, param in self.parameters.items():
            if path == "hardware":
                if param.is_interval or param.dtype() != "string":
                    raise AccelsimError("takes a list of preset names or YAML paths", field="parameters.hardware")
                continue
            if path.startswith("options.") and len(path) > len("options."):
                continue
            if path not in valid:
                raise AccelsimError(f"unknown parameter path {path!r}", field="parameters",
                                    allowed=valid + ["hardware", "options.<name>"])
            if self.sampling.method == "grid" and param.is_interval:
                raise AccelsimError("a grid needs a list of values or a range, not low/high",
                                    field=f"parameters.{path}")
            if path in RESERVED_COLUMNS:
                raise AccelsimError("collides with a reserved column", field=f"parameters.{path}",
                                    allowed=RESERVED_COLUMNS)
        for name in self.derived:
            if name in RESERVED_COLUMNS or name in self.parameters:
                raise AccelsimError("derived column collides with a parameter or reserved column",
                                    field=f"derived.{name}")
        known = set(valid) | set(self.parameters) | {"workload"}
        for i, text in enumerate(self.constraints):
            compile_expression(text, f"constraints[{i}]").require_names(known, f"constraints[{i}]")
        for name, text in self.derived.items():
            compile_expression(text, f"derived.{name}")  # names checked once metrics are known
        normalize_workloads(self.workloads, allow_code=self._allow_code)
        self._check_option_names()

    def _check_option_names(self) -> None:
        """A misspelled option would make every point fail with a TypeError; catch it here. An
        unknown evaluator name is left for run_sweep, which lists the registered ones."""
        from accelsim.sweep.evaluators import EVALUATORS, get_evaluator

        name = self.evaluator.name
        if name not in EVALUATORS and ":" not in name:
            return
        evaluator = get_evaluator(name, allow_code=self._allow_code)
        evaluator.check_options(self.evaluator.options)
        swept = [p[len("options."):] for p in self.parameters if p.startswith("options.")]
        evaluator.check_options(swept, where="parameters.options")

    # --- expansion ----------------------------------------------------------------------
    def parameter_rows(self) -> list[dict[str, Any]]:
        """Parameter assignments before constraints, in a deterministic order."""
        self._check_point_count()  # before anything is allocated
        names = list(self.parameters)
        if not names:
            return [{}]
        params = [self.parameters[n] for n in names]
        if self.sampling.method == "grid":
            grids = [p.choices() for p in params]
            return [dict(zip(names, combo)) for combo in itertools.product(*grids)]
        columns = sampled_columns(params, self.sampling)
        return [dict(zip(names, row)) for row in zip(*columns)]

    def points(self) -> "Expansion":
        """Concrete points: constraints applied, duplicates removed, every hardware validated."""
        bases = self._bases()
        workloads = normalize_workloads(self.workloads, allow_code=self._allow_code)
        fingerprints = [workload_fingerprint(w, self._allow_code) for w in workloads]
        constraints = [compile_expression(t, f"constraints[{i}]") for i, t in enumerate(self.constraints)]
        from accelsim.sweep.evaluators import engine_fingerprint, get_evaluator

        evaluator = get_evaluator(self.evaluator.name, allow_code=self._allow_code)
        common = {"evaluator": self.evaluator.name, "metrics": self.metrics, "derived": self.derived,
                  "accelsim": accelsim.__version__, "engine": engine_fingerprint(evaluator)}
        keys = PointKeys(common)
        per_workload = [keys.workload_parts(w, f) for w, f in zip(workloads, fingerprints)]
        points: list[Point] = []
        seen: set[str] = set()
        skipped = duplicates = 0
        for params in self.parameter_rows():
            hw, options = self._apply(bases, params)
            env = {**flatten_paths(hw), **params}
            row_parts = None  # the hardware and options serialized once for all this row's workloads
            for workload, parts in zip(workloads, per_workload):
                env["workload"] = workload["label"]
                if not all(_truth(c, env) for c in constraints):
                    skipped += 1
                    continue
                row_parts = row_parts or keys.row_parts(hw, options)
                key = keys.key(row_parts, parts)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                points.append(Point(len(points), key, dict(params), hw, workload, options))
        if not points:
            raise AccelsimError(f"no design points left ({skipped} removed by constraints)",
                                field="parameters" if not skipped else "constraints")
        return Expansion(points, skipped, duplicates)

    def _apply(self, bases: dict[str, dict[str, Any]], params: dict[str, Any]) -> tuple[dict, dict]:
        hw, options, _ = apply_params(bases, self.overrides, self.evaluator.options, params)
        return hw, options


def apply_params(bases: dict[str, dict[str, Any]], overrides: dict[str, Any], fixed_options: dict[str, Any],
                 params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """One parameter row applied to its base design: (validated hardware dict, options, the
    validated spec itself). Shared by the reference expansion and the workers' decoder."""
    base = bases[str(params["hardware"])] if "hardware" in params else bases[""]
    hw = json.loads(json.dumps(base))
    options = dict(fixed_options)
    for path, value in [*overrides.items(), *params.items()]:
        if path == "hardware":
            continue
        if path.startswith("options."):
            options[path[len("options."):]] = value
            continue
        node = hw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        spec = spec_from_dict(hw, source="sweep point")
    except AccelsimError as err:
        raise AccelsimError(f"{err.detail} at point {params}", field=err.field, allowed=err.allowed,
                            source="sweep") from None
    return spec.model_dump(mode="json"), options, spec


@dataclass(frozen=True)
class Expansion:
    points: list[Point]
    skipped_by_constraints: int
    duplicates: int


def _truth(expr: Expression, env: dict[str, Any]) -> bool:
    try:
        return bool(expr(env))
    except (ArithmeticError, TypeError, ValueError) as err:
        raise AccelsimError(f"cannot evaluate: {err}", field=f"constraint {expr.text!r}") from None


def flatten_paths(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"array": {"rows": 8}}`` to ``{"array.rows": 8}`` (descriptive fields left out)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if not prefix and key in DESCRIPTIVE_FIELDS:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_paths(value, f"{path}."))
        elif not isinstance(value, list):
            out[path] = value
    return out


def hardware_paths(tree: dict[str, Any]) -> list[str]:
    return sorted(flatten_paths(tree))


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def point_key(hardware: dict, workload: dict, fingerprint: str, options: dict, common: dict) -> str:
    """Hash of everything that determines a point's row: the full validated hardware dict (so two
    spellings of one design share a key), the workload and its content fingerprint, evaluator and
    options, kept metrics and derived formulas, the accelsim version, and a fingerprint of the
    evaluator's engine source (:func:`accelsim.sweep.evaluators.engine_fingerprint`), so an engine
    edit without a version bump does not reuse rows the old engine computed."""
    payload = {"hardware": hardware, "workload": {k: v for k, v in workload.items() if k != "label"},
               "label": workload["label"], "fingerprint": fingerprint, "options": options, **common}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:24]


class PointKeys:
    """:func:`point_key` for many points at the price of one serialization per design.

    Why: hashing re-serialized the whole payload (hardware dict included) for every point, about a
    fifth of the parent's expansion time, paid before any worker starts. The payload's top-level
    values are serialized once where they are shared (the common part once per sweep, a workload
    once per sweep, a hardware dict and its options once per parameter row) and joined in sorted
    key order, which yields exactly the text ``canonical_json(payload)`` would: keys, and hence
    resumed results, are unchanged (``tests/test_sweep_keys.py`` checks it against point_key).
    """

    _ROW = ("hardware", "options")
    _WORKLOAD = ("workload", "label", "fingerprint")

    def __init__(self, common: dict[str, Any]) -> None:
        clash = set(common) & {*self._ROW, *self._WORKLOAD}
        if clash:
            raise ValueError(f"common key parts {sorted(clash)} collide with the point's own")
        self._common = {k: canonical_json(v) for k, v in common.items()}
        self._order = [(k, json.dumps(k) + ":") for k in sorted([*common, *self._ROW, *self._WORKLOAD])]

    def workload_parts(self, workload: dict[str, Any], fingerprint: str) -> dict[str, str]:
        return {"workload": canonical_json({k: v for k, v in workload.items() if k != "label"}),
                "label": canonical_json(workload["label"]), "fingerprint": canonical_json(fingerprint)}

    def row_parts(self, hardware: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
        return {"hardware": canonical_json(hardware), "options": canonical_json(options)}

    def key(self, row_parts: dict[str, str], workload_parts: dict[str, str]) -> str:
        parts = {**self._common, **row_parts, **workload_parts}
        text = "{" + ",".join(name + parts[k] for k, name in self._order) + "}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]
