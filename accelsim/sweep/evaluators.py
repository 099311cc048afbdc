"""Evaluators: what turns (hardware, workload, options) into a dict of metrics.

A registry, so each engine or mapper adds one small function here (or registers its own from its
module) and every sweep, CLI and notebook can use it by name. Installed packages add theirs as
entry points of the group ``accelsim.evaluators``; a sweep may also name any importable function
as ``package.module:function`` with the same signature, imported only with ``--allow-code`` /
``allow_code=True`` (:mod:`accelsim.sweep.plugins`).

Signature: ``fn(hardware: HardwareSpec, workload: GemmShape | Graph, options: dict) -> dict``.
The dict may nest one level (``{"sram_reads": {"ifmap": ..}}``); the sweep flattens it to
``sram_reads_ifmap`` columns as :class:`accelsim.report.Report` does.

``simulate`` is the one evaluator for every hardware kind: a thin layer over
``accelsim.simulate`` (the engine registry), whose columns are the Report core's vocabulary.
``systolic``, ``roofline`` and ``attention`` keep their engine-specific columns.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec
from accelsim.ir import GemmShape, Graph
from accelsim.sweep import plugins

EvaluatorFn = Callable[[HardwareSpec, "GemmShape | Graph", dict[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Evaluator:
    name: str
    fn: EvaluatorFn
    kinds: tuple[str, ...] | None = None
    # Declared metric columns and their Arrow types; None means "learn them from a first point".
    metric_types: dict[str, str] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The option names the evaluator accepts, as a function (engines import lazily); None means
    # "not declared", and then options are not checked before the sweep runs.
    option_names: Callable[[], tuple[str, ...]] | None = None
    # Modules whose code computes the metrics (engines, mappers); their source is part of every
    # point key, see :func:`engine_fingerprint`.
    engine_modules: tuple[str, ...] = ()

    def check_options(self, names: Iterable[str], where: str = "evaluator.options") -> None:
        """Fail before any point runs if an option is misspelled, listing the valid names."""
        if self.option_names is None:
            return
        valid = self.option_names()
        for name in names:
            if name not in valid:
                raise AccelsimError(f"unknown option {name!r} for evaluator {self.name!r}", field=f"{where}.{name}",
                                    allowed=list(valid) or "no options")


def keyword_options(*functions: Callable[..., Any], extra: tuple[str, ...] = ()) -> Callable[[], tuple[str, ...]]:
    """Option names read from the keyword-only parameters of the engine functions the options are
    passed to, so the list cannot drift from the engine's real signature."""
    import inspect

    def names() -> tuple[str, ...]:
        found: list[str] = list(extra)
        for fn in functions:
            for p in inspect.signature(fn).parameters.values():
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in found:
                    found.append(p.name)
        return tuple(found)

    return names


EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(name: str, *, kinds: tuple[str, ...] | None = None,
                       metric_types: dict[str, str] | None = None, description: str = "",
                       option_names: Callable[[], tuple[str, ...]] | None = None,
                       engine_modules: tuple[str, ...] = ()) -> Callable[[EvaluatorFn], EvaluatorFn]:
    def wrap(fn: EvaluatorFn) -> EvaluatorFn:
        EVALUATORS[name] = Evaluator(name, fn, kinds, metric_types, description or (fn.__doc__ or "").strip(),
                                     option_names=option_names, engine_modules=engine_modules)
        return fn

    return wrap


def get_evaluator(name: str, *, allow_code: bool = False) -> Evaluator:
    """A registered evaluator by name, an installed entry point, or (only with ``allow_code``) an
    importable ``module:function``."""
    if name in EVALUATORS:
        return EVALUATORS[name]
    allowed = sorted(EVALUATORS) + plugins.entry_point_names(plugins.EVALUATOR_GROUP) + ["package.module:function"]
    if plugins.is_code_reference(name):
        return Evaluator(name, plugins.import_callable(name, "evaluator.name", allow_code=allow_code, allowed=allowed))
    found = plugins.load_entry_point(plugins.EVALUATOR_GROUP, name, "evaluator.name") if isinstance(name, str) else None
    if isinstance(found, Evaluator):
        EVALUATORS[name] = found
    elif callable(found):  # a plain function: its module's code is part of the point keys
        EVALUATORS[name] = Evaluator(name, found, engine_modules=(found.__module__,))
    if name not in EVALUATORS:
        raise AccelsimError(f"unknown evaluator {name!r}", field="evaluator.name", allowed=allowed)
    return EVALUATORS[name]


# Code whose edits change what an evaluator computes: followed through imports when fingerprinting.
ENGINE_PACKAGES = ("accelsim.engines", "accelsim.ir", "accelsim.hardware", "accelsim.yamlio", "mappers",
                   "workloads")


def engine_fingerprint(evaluator: Evaluator) -> str:
    """A hash of the code that computes this evaluator's metrics, part of every point key.

    Why: keys also hold ``accelsim.__version__``, but the version is not bumped for every engine
    fix, and a resumed sweep would silently reuse rows computed by the old engine. Hashed: the
    source of the evaluator function (registered ones) or its whole module (``module:function``
    ones), plus the source files of its ``engine_modules`` and of every module under
    :data:`ENGINE_PACKAGES` (engines, mappers, the IR, hardware specs, workload builders) those
    import, transitively. Not hashed: installed third-party packages (pin them). A source that
    cannot be read hashes as its name only.
    """
    import hashlib
    import inspect

    digest = hashlib.sha256()
    try:
        if evaluator.name in EVALUATORS:
            own = inspect.getsource(evaluator.fn).encode()
        else:  # the file as it is on disk now (inspect's line cache could be stale)
            with open(inspect.getsourcefile(evaluator.fn) or "", "rb") as f:
                own = f.read()
    except (OSError, TypeError):
        own = evaluator.name.encode()
    digest.update(own)
    start = list(evaluator.engine_modules)
    if evaluator.name not in EVALUATORS:
        start.append(evaluator.fn.__module__)
    for name, text in sorted(_module_closure(start).items()):
        digest.update(f"\0{name}\0".encode() + text)
    return digest.hexdigest()[:16]


def _module_closure(names: list[str]) -> dict[str, bytes]:
    """Source bytes of ``names`` and of every engine/mapper module they import, transitively."""
    import ast
    import importlib.util

    seen: dict[str, bytes] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if not origin or not origin.endswith(".py"):
            seen[name] = b""
            continue
        with open(origin, "rb") as f:
            seen[name] = f.read()
        for node in ast.walk(ast.parse(seen[name])):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for dep in found:
                if dep.startswith(ENGINE_PACKAGES) and dep not in seen:
                    try:
                        if importlib.util.find_spec(dep) is not None:
                            todo.append(dep)
                    except (ImportError, ValueError):
                        pass
    return seen


_OPERANDS = ("ifmap", "filter", "ofmap")
# The columns a systolic point reports: what simulate_gemm and simulate_graph's totals share.
# Declared (not learned from a first point) so counts stay integers and the schema never depends
# on which point happened to run first. energy_pj is null when the spec gives no energies.
SYSTOLIC_METRICS: dict[str, str] = {
    **{name: "int64" for name in ("macs", "folds", "compute_cycles", "stall_cycles", "total_cycles",
                                  "prefetch_cycles", "drain_cycles", "end_to_end_cycles",
                                  "dram_read_bytes", "dram_write_bytes")},
    "total_s": "float64", "overall_utilization": "float64", "compute_utilization": "float64",
    "mapping_efficiency": "float64",
    **{f"{group}_{op}": "int64" for group in ("sram_reads", "sram_writes", "dram_bytes", "compulsory_dram_bytes")
       for op in _OPERANDS},
    "energy_pj": "float64",
}


def _systolic_options() -> tuple[str, ...]:
    from accelsim.engines import systolic as engine

    return keyword_options(engine.simulate_gemm, engine.simulate_graph)()


def _roofline_options() -> tuple[str, ...]:
    from accelsim.ir import gemm

    return keyword_options(gemm)()


@register_evaluator("systolic", kinds=("systolic",), metric_types=SYSTOLIC_METRICS,
                    description="cycle-level systolic-array engine (accelsim.engines.systolic)",
                    option_names=_systolic_options, engine_modules=("accelsim.engines.systolic",))
def systolic(hardware: HardwareSpec, workload: GemmShape | Graph, options: dict[str, Any]) -> Mapping[str, Any]:
    """One GEMM through ``simulate_gemm`` or a whole graph through ``simulate_graph`` (totals)."""
    try:
        from accelsim.engines import systolic as engine
    except ImportError as err:  # the engine lands on its own branch
        raise AccelsimError(f"the systolic engine is not available: {err}", field="evaluator.name") from None
    if isinstance(workload, GemmShape):
        return engine.simulate_gemm(workload, hardware, **options)
    if not isinstance(workload, Graph):  # a zoo model: run its layers, repeats expanded
        workload = workload.expand()
    report = engine.simulate_graph(workload, hardware, **options)
    skipped = report.meta.get("not_mapped") or []
    if skipped:  # a total without them would be a silently wrong number
        raise AccelsimError(f"{len(skipped)} einsums are not GEMMs and the layer engine costs only GEMMs (first: "
                            f"{skipped[0]['einsum']}); use evaluator 'simulate' for whole models", field="evaluator.name",
                            allowed="simulate")
    return report.totals


# The Report core's columns (accelsim.report.Totals.flat) for the units, levels and roles the
# registered engines use; a column a kind does not have is null.
_UNITS = ("matrix", "vector", "dma", "link", "compute", "memory")
_ROLES = ("input", "weight", "kv_cache", "activation", "output")
SIMULATE_METRICS: dict[str, str] = {
    **{name: "float64" for name in ("total_s", "total_cycles", "macs", "flops", "energy_pj", "energy_known_pj",
                                    "dram_bytes", "read_bytes_dram", "write_bytes_dram")},
    **{f"offchip_bytes_{role}": "float64" for role in _ROLES},
    **{f"{prefix}_{unit}": "float64" for prefix in ("busy_s", "busy_cycles", "utilization") for unit in _UNITS},
}


def _simulate_options() -> tuple[str, ...]:
    return ("overlap", "max_tiles")


@register_evaluator("simulate", kinds=None, metric_types=SIMULATE_METRICS, option_names=_simulate_options,
                    engine_modules=("accelsim.simulate", "accelsim.engines"),
                    description="accelsim.simulate: any workload on any registered hardware kind (Report core)")
def simulate(hardware: HardwareSpec, workload: Any, options: dict[str, Any]) -> Mapping[str, Any]:
    """A GEMM, Graph or zoo model through the engine registered for the hardware's kind."""
    from accelsim.simulate import simulate as run

    if isinstance(workload, GemmShape):
        from accelsim.ir import gemm

        workload = Graph("gemm", [gemm("gemm", workload.m, workload.k, workload.n)])
    engine_options = {k: v for k, v in options.items() if hardware.kind in ("systolic", "spatial")}
    report = run(workload, hardware, **engine_options)
    return {k: v for k, v in report.core.flat().items() if k in SIMULATE_METRICS}


ROOFLINE_METRICS: dict[str, str] = {
    **{name: "float64" for name in ("total_s", "flops", "bytes", "comm_bytes", "compute_bound_s", "memory_bound_s",
                                    "communication_bound_s")},
    "bound": "string",
    # bytes by tensor role (accelsim.ir.TensorRole values)
    **{f"bytes_by_role_{role}": "float64" for role in ("input", "weight", "kv_cache", "activation", "output")},
}


@register_evaluator("roofline", kinds=("gpu",), metric_types=ROOFLINE_METRICS, option_names=_roofline_options,
                    engine_modules=("accelsim.engines.roofline",),
                    description="roofline engine: max(compute, memory, link) time per einsum (accelsim.engines.roofline)")
def roofline(hardware: HardwareSpec, workload: GemmShape | Graph, options: dict[str, Any]) -> Mapping[str, Any]:
    """A Graph or zoo model on a GPU-like device; a single GEMM is costed as a one-einsum graph."""
    from accelsim.engines.roofline import roofline as engine

    if isinstance(workload, GemmShape):
        from accelsim.ir import gemm

        workload = Graph("gemm", [gemm("gemm", workload.m, workload.k, workload.n, **options)])
    return engine(workload, hardware).totals


ATTENTION_METRICS: dict[str, str] = {
    name: "float64" for name in ("latency_cycles", "latency_s", "dram_bytes", "energy_pj", "util_2d", "util_1d",
                                 "buffer_bytes_needed", "buffer_bytes_used", "area_um2", "spill_fraction")}


@register_evaluator("attention", kinds=("spatial",), metric_types=ATTENTION_METRICS,
                    option_names=lambda: ("design",),
                    engine_modules=("accelsim.engines.spatial", "mappers.fusemax"),
                    description="attention on a spatial accelerator: a published plan (options.design) "
                                "simulated by accelsim.engines.spatial")
def attention(hardware: HardwareSpec, workload: Any, options: dict[str, Any]) -> Mapping[str, Any]:
    """``options.design`` is one of mappers.fusemax.DESIGNS (fusemax, arch, cascade, flat, unfused)."""
    from accelsim.engines.spatial import report
    from mappers.fusemax import DESIGNS, mapped_graph, published_mapping

    design = options.get("design", "fusemax")
    if design not in DESIGNS:
        raise AccelsimError(f"unknown design {design!r}", field="options.design", allowed=DESIGNS)
    if not hasattr(workload, "m") or not hasattr(workload, "e"):
        raise AccelsimError("needs an attention workload, e.g. {attention: {model: bert, seq: 4096}}",
                            field="workloads")
    mapping = published_mapping(design, hardware, workload)
    return report(mapped_graph(workload, mapping), hardware, mapping).totals
