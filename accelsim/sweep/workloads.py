"""Workload entries of a sweep: how a line of YAML becomes a Graph or a single GEMM.

Forms accepted (each is one entry of ``workloads:``):

- ``example``: the built-in default example (a BERT-base encoder layer's GEMMs);
- ``{transformer_layer: {seq: 128, d_model: 256}}``: a registered builder with keyword args;
- ``{gemm: [m, k, n]}`` or ``{gemm: {m: .., k: .., n: .., batch: ..}}``: one GEMM;
- ``{gemms: [[m, k, n], ...]}``: shorthand for several ``gemm`` entries;
- ``{zoo: {model: llama-2-7b, phase: decode, batch: 8, seq: 1, context: 2048}}``: a whole zoo model;
- ``{attention: {model: bert, seq: 4096, batch: 64}}``: one attention layer's shape;
- ``{builder: name, args: {...}}``: a registered builder or one an installed package exposes as an
  entry point of the group ``accelsim.workloads``;
- ``{builder: "package.module:function", args: {...}}``: any importable graph builder, imported
  only when the caller opted in (``--allow-code``; see :mod:`accelsim.sweep.plugins`).

Every form may add ``label: text`` (the value of the ``workload`` column). Builders register
in ``BUILDERS``; a model zoo adds its entry there (extension point) without touching the sweep.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.ir import GemmShape, Graph, ModelGraph
from accelsim.sweep import plugins

BUILDERS: dict[str, Callable[..., Graph]] = {}


def register_builder(name: str) -> Callable[[Callable[..., Graph]], Callable[..., Graph]]:
    """Decorator: make ``{name: {args}}`` a valid sweep workload entry."""

    def wrap(fn: Callable[..., Graph]) -> Callable[..., Graph]:
        BUILDERS[name] = fn
        return fn

    return wrap


def zoo_model(model: str, phase: str = "prefill", batch: int = 1, seq: int = 512, context: int = 0, tp: int = 1,
              fused_attention: bool = True) -> Any:
    """A whole model from the zoo (``workloads/zoo/*.yaml`` or a config path) for one phase."""
    from workloads.models import load_model
    from workloads.transformer import build_model

    return build_model(load_model(model), phase, batch=batch, seq=seq, context=context, tp=tp,
                       fused_attention=fused_attention)


def attention_layer(model: str = "bert", seq: int = 1024, batch: int = 64, heads: int | None = None,
                    queries: int | None = None) -> Any:
    """One attention layer's shape (``workloads.attention``): a FuseMax-artifact model at ``seq``."""
    from dataclasses import replace

    from workloads.attention import attention_model

    shape = attention_model(model).shape(seq, batch=batch)
    if heads is not None:
        shape = replace(shape, h=heads)
    if queries is not None:
        shape = replace(shape, p=queries)
    return shape


def _builtin_builders() -> None:
    from workloads import examples

    BUILDERS.setdefault("example", examples.default_example)
    BUILDERS.setdefault("transformer_layer", examples.transformer_layer_gemms)
    BUILDERS.setdefault("zoo", zoo_model)
    BUILDERS.setdefault("attention", attention_layer)


_builtin_builders()


def builder_names() -> list[str]:
    """Every builder a sweep file may name without --allow-code."""
    return sorted(set(BUILDERS) | set(plugins.entry_point_names(plugins.BUILDER_GROUP)))


def find_builder(target: str, field: str, *, allow_code: bool = False) -> Callable[..., Any] | None:
    """A registered builder, an installed entry point, or (opt-in only) ``module:function``;
    None for a plain name that is none of these."""
    if target in BUILDERS:
        return BUILDERS[target]
    if plugins.is_code_reference(target):
        return plugins.import_callable(target, field, allow_code=allow_code,
                                       allowed=builder_names() + ["gemm", "gemms"])
    fn = plugins.load_entry_point(plugins.BUILDER_GROUP, target, field)
    if fn is not None and not callable(fn):
        raise AccelsimError(f"the entry point {target!r} is not callable", field=field)
    return fn


def _gemm_dict(value: Any, field: str) -> dict[str, int]:
    if isinstance(value, (list, tuple)) and len(value) in (3, 4):
        value = dict(zip(("m", "k", "n", "batch"), value))
    if not isinstance(value, dict) or not {"m", "k", "n"} <= set(value) or set(value) - {"m", "k", "n", "batch"}:
        raise AccelsimError(f"a GEMM is [m, k, n], [m, k, n, batch] or {{m, k, n, batch}}, got {value!r}", field=field)
    gemm = {"m": value["m"], "k": value["k"], "n": value["n"], "batch": value.get("batch", 1)}
    for name, size in gemm.items():
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise AccelsimError(f"GEMM size {name} must be a positive integer, got {size!r}", field=field)
    return gemm


def normalize_workloads(entries: list[Any], *, allow_code: bool = False) -> list[dict[str, Any]]:
    """Expand shorthands and check every entry; result entries are plain JSON-able dicts.

    A normalized entry is ``{"label": str, "gemm": {...}}`` or
    ``{"label": str, "builder": name_or_import_path, "args": {...}}``. A ``module:function``
    builder is refused (nothing imported) unless ``allow_code``.
    """
    if not entries:
        raise AccelsimError("needs at least one workload", field="workloads",
                            allowed="example, {gemm: [m, k, n]}, {gemms: [...]}, {<builder>: {args}}, "
                                    "{builder: 'module:function', args: {...}}")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        field = f"workloads[{i}]"
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict):
            raise AccelsimError(f"expected a name or a mapping, got {entry!r}", field=field)
        entry = dict(entry)
        label = entry.pop("label", None)
        if "gemms" in entry:
            if entry.keys() != {"gemms"} or not isinstance(entry["gemms"], list) or not entry["gemms"]:
                raise AccelsimError("'gemms' takes a non-empty list of [m, k, n] and nothing else", field=field)
            for j, g in enumerate(entry["gemms"]):
                gemm = _gemm_dict(g, f"{field}.gemms[{j}]")
                out.append({"label": _gemm_label(gemm), "gemm": gemm})
            continue
        if "gemm" in entry:
            if entry.keys() != {"gemm"}:
                raise AccelsimError("'gemm' takes no other keys besides 'label'", field=field)
            gemm = _gemm_dict(entry["gemm"], f"{field}.gemm")
            out.append({"label": label or _gemm_label(gemm), "gemm": gemm})
            continue
        if "builder" in entry:
            target = entry.pop("builder")
            args = entry.pop("args", {}) or {}
            if entry:
                raise AccelsimError(f"unknown keys {sorted(entry)}", field=field, allowed="builder, args, label")
            if not isinstance(target, str) or find_builder(target, f"{field}.builder", allow_code=allow_code) is None:
                raise AccelsimError(f"unknown workload builder {target!r}", field=f"{field}.builder",
                                    allowed=builder_names())
        else:
            if len(entry) != 1:
                raise AccelsimError(f"expected exactly one builder name, got {sorted(entry)}", field=field,
                                    allowed=sorted(BUILDERS) + ["gemm", "gemms", "builder"])
            (target, args), = entry.items()
            args = args or {}
            if plugins.is_code_reference(target):  # a code reference belongs under builder:, same gate
                find_builder(target, field, allow_code=allow_code)
                raise AccelsimError(f"write a code reference as {{builder: {target!r}, args: {{...}}}}", field=field)
            if find_builder(target, field) is None:
                raise AccelsimError(f"unknown workload {target!r}", field=field,
                                    allowed=builder_names() + ["gemm", "gemms", "builder"])
        if not isinstance(args, dict):
            raise AccelsimError(f"builder arguments must be a mapping, got {args!r}", field=field)
        normalized = {"builder": target, "args": dict(args)}
        graph = resolve_workload(json.dumps(normalized, sort_keys=True), allow_code)  # fail now, not in a worker
        out.append({"label": label or getattr(graph, "name", target), **normalized})
    labels = [w["label"] for w in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise AccelsimError(f"workload labels repeat: {dup}; give each entry a distinct 'label'", field="workloads")
    return out


def _gemm_label(gemm: dict[str, int]) -> str:
    base = f"gemm-{gemm['m']}x{gemm['k']}x{gemm['n']}"
    return base if gemm["batch"] == 1 else f"{base}x{gemm['batch']}"


@functools.lru_cache(maxsize=64)
def resolve_workload(canonical: str, allow_code: bool = False) -> Any:
    """A normalized entry (as canonical JSON, so it can be cached per process) to its object."""
    entry = json.loads(canonical)
    entry.pop("label", None)
    if "gemm" in entry:
        return GemmShape(**entry["gemm"])
    target, args = entry["builder"], entry["args"]
    fn = find_builder(target, "workloads.builder", allow_code=allow_code)
    if fn is None:
        raise AccelsimError(f"unknown workload builder {target!r}", field="workloads", allowed=builder_names())
    try:
        graph = fn(**args)
    except AccelsimError:
        raise
    except (TypeError, AttributeError) as err:  # an argument of the wrong kind (a list for a name, ...)
        raise AccelsimError(f"bad arguments {str(args)[:200]} for workload {target!r}: {type(err).__name__}: "
                            f"{err}", field="workloads") from None
    if graph is None:
        raise AccelsimError(f"workload {target!r} returned nothing", field="workloads")
    return graph  # a Graph, GemmShape, model with parts, or a shape an evaluator understands


def workload_fingerprint(entry: dict[str, Any], allow_code: bool = False) -> str:
    """A digest of what the workload *is* (every einsum's ranks, extents, tensors), not of how it
    was named, so editing a builder's defaults changes the points' keys and stale results are
    not reused."""
    obj = resolve_workload(json.dumps({k: v for k, v in entry.items() if k != "label"}, sort_keys=True), allow_code)
    if isinstance(obj, GemmShape):
        desc: Any = {"gemm": [obj.m, obj.k, obj.n, obj.batch]}
    elif isinstance(obj, Graph):
        desc = _graph_desc(obj)
    elif isinstance(obj, ModelGraph):  # a model: parts of (graph, repeat)
        desc = {"model": obj.name, "parts": [[p.name, p.repeat, _graph_desc(p.graph)] for p in obj.parts]}
    elif dataclasses.is_dataclass(obj):  # a shape such as AttentionShape
        desc = {type(obj).__name__: dataclasses.asdict(obj)}
    else:
        desc = {type(obj).__name__: repr(obj)}
    return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _graph_desc(graph: Graph) -> dict[str, Any]:
    return {"graph": graph.name, "einsums": [
        {"name": e.name, "op": e.op.value, "extents": dict(e.extents), "attrs": _plain(dict(e.attrs)),
         "out": [e.output.tensor.name, list(e.output.index)],
         "in": [[o.tensor.name, list(o.index)] for o in e.inputs]}
        for e in graph.einsums],
        "tensors": {t.name: [list(t.dims), list(t.shape), t.dtype_bytes, t.role.value]
                    for t in graph.tensors.values()}}


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)
