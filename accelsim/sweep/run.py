"""Running a sweep: in-process, on a local process pool, or on a Dask cluster; resumable.

The parent expands the spec into points (every input error surfaces here, before any work),
drops the points whose key is already on disk, hands the rest to an executor
(:mod:`accelsim.sweep.executors`, which cuts them into tasks sized from the measured cost of a
point, :mod:`accelsim.sweep.chunking`) and streams the rows into the store as points finish: a part
file whenever ``flush_rows`` rows are buffered or ``flush_s`` seconds passed, and always on the
way out (Ctrl-C included).

Failure handling, which is what makes a long sweep safe to leave alone:

- a point whose evaluator raises becomes a row with ``status`` ``error`` (or ``infeasible`` for an
  :class:`~accelsim.errors.InfeasibleError`) and its message; the sweep goes on;
- a worker process that dies (segfault, OOM kill, ``os._exit``) breaks the process pool; the
  points that were running are re-run one at a time in a fresh single-worker pool, so the
  point that kills its worker is found and recorded as an error, and the others complete;
  on Dask a ``KilledWorker`` chunk is split the same way;
- Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) writes every finished row before
  the exception propagates: rows come back point by point, so only the points still running are
  lost. A re-run computes only what is missing.

Workers ignore SIGINT so that only the parent decides what an interrupt means.
"""
from __future__ import annotations

import contextlib
import errno
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import accelsim
from accelsim.errors import AccelsimError
from accelsim.hardware.base import spec_from_dict
from accelsim.report import flatten
from accelsim.sweep.evaluators import get_evaluator
from accelsim.sweep.executors import (DASK_MAX_CHUNK, _client_within, connect_dask, dask_rows,  # noqa: F401
                                      process_rows, serial_rows)
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.lock import directory_lock
from accelsim.sweep.spec import RESERVED_COLUMNS, Point, SweepSpec, canonical_json, flatten_paths
from accelsim.sweep.store import ERROR, INFEASIBLE, OK, ResultStore, arrow_schema
from accelsim.sweep.worker import Context, row_of_result, task_of
from accelsim.sweep.workloads import resolve_workload

EXECUTORS = ("serial", "process", "dask")


# --- the driver -------------------------------------------------------------------------------
class Progress:
    """Callbacks for a progress display; the library's default does nothing."""

    def start(self, total: int, already_done: int) -> None: ...

    def advance(self, ok: int, failed: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class SweepResult:
    out_dir: Path
    total: int  # points in the spec after constraints and de-duplication
    skipped_by_constraints: int
    already_done: int  # found on disk and not recomputed
    computed: int  # evaluated by this run (probe included)
    ok: int
    failed: int
    part_files: int

    def table(self):  # noqa: ANN201 - a DataFrame
        from accelsim.sweep.store import load_results

        return load_results(self.out_dir)


def run_sweep(spec: SweepSpec | dict | str | Path, out_dir: str | Path, *, executor: str = "process",
              workers: int | None = None, dask: Any = None, retry_failed: bool = False,
              progress: Progress | None = None, flush_rows: int = 2000, flush_s: float = 1.0,
              chunk_size: int | None = None, allow_code: bool = False,
              max_points: int | None = None) -> SweepResult:
    """Run (or resume) ``spec`` into ``out_dir``; see the module docstring for the guarantees.

    ``executor`` is serial, process or dask (``dask`` then gives a scheduler address or a
    ``distributed.Client``; passing ``dask`` alone implies the dask executor). ``allow_code`` lets
    the spec's ``module:function`` builders and evaluators be imported (off by default: a sweep
    file is data; see :mod:`accelsim.sweep.plugins`). ``max_points`` raises the refusal limit
    :data:`accelsim.sweep.spec.MAX_POINTS` on the number of points the spec expands to.
    """
    spec = _as_spec(spec, allow_code, max_points)
    if dask is not None:
        executor = "dask"
    if executor not in EXECUTORS:
        raise AccelsimError(f"unknown executor {executor!r}", field="executor", allowed=EXECUTORS)
    if workers is not None and workers < 1:
        raise AccelsimError(f"must be at least 1, got {workers}", field="workers")
    if executor == "dask" and dask is None:
        raise AccelsimError("the dask executor needs a scheduler address", field="--dask",
                            allowed="tcp://host:port")
    progress = progress or Progress()

    expansion = spec.points()
    points = expansion.points
    evaluator = get_evaluator(spec.evaluator.name, allow_code=spec.allow_code)
    if evaluator.kinds is not None:
        kinds = {p.hardware["kind"] for p in points}
        if not kinds <= set(evaluator.kinds):
            raise AccelsimError(f"evaluator {evaluator.name!r} cannot run hardware of kind {sorted(kinds)}",
                                field="evaluator.name", allowed=evaluator.kinds)
    client, own_client = (connect_dask(dask) if executor == "dask" else (None, False))
    try:
        with directory_lock(out_dir):
            return _run_locked(spec, expansion, evaluator, Path(out_dir), executor=executor, workers=workers,
                               client=client, retry_failed=retry_failed, progress=progress, flush_rows=flush_rows,
                               flush_s=flush_s, chunk_size=chunk_size)
    finally:
        if own_client:
            client.close()


def _run_locked(spec: SweepSpec, expansion: Any, evaluator: Any, out_dir: Path, *, executor: str,
                workers: int | None, client: Any, retry_failed: bool, progress: Progress, flush_rows: int,
                flush_s: float, chunk_size: int | None) -> SweepResult:
    """The sweep proper, with the directory's lock held: resume, write, and stream the rows."""
    points = expansion.points
    store = ResultStore(out_dir)
    statuses = store.statuses()
    skip = {OK} if retry_failed else {OK, ERROR, INFEASIBLE}
    todo = [p for p in points if statuses.get(p.key) not in skip]
    already_done = len(points) - len(todo)

    param_paths = tuple(spec.parameters)
    probe_rows: list[dict[str, Any]] = []
    columns = _columns(spec, store, param_paths)
    if columns is None:
        metric_types, probe_rows = _probe_metrics(spec, evaluator, todo, param_paths)
        columns = _assemble_columns(spec, param_paths, metric_types)
    context = Context(spec.evaluator.name, _metric_types(columns, spec), dict(spec.derived), param_paths,
                      spec.allow_code)
    _check_derived_names(spec, points[0], context)
    existing = store.read_manifest()
    if store.parts() and existing and existing.get("columns") and existing["columns"] != columns:
        raise AccelsimError("holds results with different columns; write this sweep to another directory",
                            source=str(out_dir))
    with _disk_errors(out_dir):
        store.write_manifest({"name": spec.name, "accelsim": accelsim.__version__,
                              "spec": spec.model_dump(mode="json"), "keys": [p.key for p in points],
                              "columns": columns, "schema_basis": _schema_basis(spec),
                              "skipped_by_constraints": expansion.skipped_by_constraints,
                              "duplicates": expansion.duplicates, "updated_unix_s": time.time()})
    schema = arrow_schema([tuple(c) for c in columns])  # type: ignore[misc]

    probed = {r["key"] for r in probe_rows}
    tasks = [task_of(p) for p in todo if p.key not in probed]
    n_workers = _worker_count(executor, workers, client)
    chunks = [tasks]  # the executors cut it into chunks sized from the measured cost of a point

    buffer: list[dict[str, Any]] = []
    counts = {"ok": 0, "failed": 0, "parts": 0}
    last_flush = time.monotonic()

    def unfit(row: dict[str, Any], why: str) -> dict[str, Any]:
        """A row with a value no column type can hold becomes that point's error row."""
        if row.get("status") == OK:
            counts["ok"] -= 1
            counts["failed"] += 1
        bad = {**row, "status": ERROR, "error": f"ValueError: {why}"}
        bad.update({name: None for name in (*context.metric_types, *context.derived)})
        return bad

    def flush() -> None:
        nonlocal last_flush
        if buffer:
            rows = list(buffer)
            buffer.clear()  # a failed write is not retried on the way out: those points stay pending
            with _disk_errors(out_dir):
                store.append(rows, schema, on_unfit=unfit)
            counts["parts"] += 1
        last_flush = time.monotonic()

    def take(rows: list[dict[str, Any]]) -> None:
        ok = sum(r["status"] == OK for r in rows)
        counts["ok"] += ok
        counts["failed"] += len(rows) - ok
        buffer.extend(rows)
        progress.advance(ok, len(rows) - ok)
        if len(buffer) >= flush_rows or time.monotonic() - last_flush >= flush_s:
            flush()

    progress.start(len(todo), already_done)
    spill: list[dict[str, Any]] = []  # rows an executor collected while being stopped
    if executor == "serial":
        stream = serial_rows(context, chunks)
    elif executor == "process":
        stream = process_rows(context, chunks, n_workers, spill, chunk_size=chunk_size)
    else:
        stream = dask_rows(context, chunks, client, chunk_size=chunk_size)
    try:
        take(probe_rows)
        for rows in stream:
            take(rows)
    finally:
        stream.close()
        buffer.extend(spill)
        try:
            flush()
        finally:
            progress.close()
    return SweepResult(out_dir, len(points), expansion.skipped_by_constraints, already_done,
                       counts["ok"] + counts["failed"], counts["ok"], counts["failed"], counts["parts"])


@contextlib.contextmanager
def _disk_errors(out_dir: Path) -> Iterator[None]:
    """A write that fails (disk full, quota, read-only file system) is one line, not a traceback:
    every part file already written is whole (parts are renamed into place only once complete),
    so the sweep resumes from them once the cause is fixed."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or str(err)
        code = errno.errorcode.get(err.errno or 0)
        raise AccelsimError(f"cannot write results: {reason}{f' ({code})' if code else ''}; the rows already "
                            "on disk are intact, fix the cause and run again to resume", source=str(out_dir)) from None


def _as_spec(spec: SweepSpec | dict | str | Path, allow_code: bool, max_points: int | None) -> SweepSpec:
    limit = {} if max_points is None else {"max_points": max_points}
    if isinstance(spec, dict):
        return SweepSpec.from_dict(spec, allow_code=allow_code, **limit)
    if not isinstance(spec, SweepSpec):
        return SweepSpec.from_yaml(spec, allow_code=allow_code, **limit)
    if allow_code and not spec.allow_code:
        spec = spec.permitting_code()
    return spec.with_max_points(max_points) if max_points is not None else spec


def _worker_count(executor: str, workers: int | None, client: Any) -> int:
    if executor == "serial":
        return 1
    if executor == "dask":
        return max(1, sum(client.nthreads().values()))
    return workers or multiprocessing.cpu_count()


def _schema_basis(spec: SweepSpec) -> str:
    return canonical_json({"evaluator": spec.evaluator.name, "metrics": spec.metrics, "derived": spec.derived,
                           "parameters": {k: p.dtype() for k, p in spec.parameters.items()}})


def _columns(spec: SweepSpec, store: ResultStore, param_paths: tuple[str, ...]) -> list[list[str]] | None:
    """Columns known without evaluating anything: from the manifest of an earlier run of the same
    shape, or from the evaluator's declared metrics."""
    manifest = store.read_manifest()
    if manifest and manifest.get("schema_basis") == _schema_basis(spec) and manifest.get("columns"):
        return manifest["columns"]
    declared = get_evaluator(spec.evaluator.name, allow_code=spec.allow_code).metric_types
    if declared is None:
        return None
    if spec.metrics is not None:
        unknown = [m for m in spec.metrics if m not in declared]
        if unknown:
            raise AccelsimError(f"unknown metric {unknown[0]!r}", field="metrics", allowed=list(declared))
        declared = {m: declared[m] for m in spec.metrics}
    return _assemble_columns(spec, param_paths, declared)


def _assemble_columns(spec: SweepSpec, param_paths: tuple[str, ...], metric_types: dict[str, str]) -> list[list[str]]:
    cols = [["point", "int64"], ["key", "string"], ["status", "string"], ["error", "string"],
            ["workload", "string"], ["evaluator", "string"]]
    cols += [[p, spec.parameters[p].dtype()] for p in param_paths]
    taken = {c[0] for c in cols}
    for name, kind in metric_types.items():
        if name in taken:
            raise AccelsimError("metric name collides with a parameter or reserved column", field=f"metrics.{name}",
                                allowed=RESERVED_COLUMNS)
        cols.append([name, kind])
    cols += [[name, "float64"] for name in spec.derived]
    return cols


def _metric_types(columns: list[list[str]], spec: SweepSpec) -> dict[str, str]:
    fixed = {"point", "key", "status", "error", "workload", "evaluator", *spec.parameters, *spec.derived}
    return {name: kind for name, kind in columns if name not in fixed}


def _probe_metrics(spec: SweepSpec, evaluator: Any, todo: list[Point],
                   param_paths: tuple[str, ...]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Learn metric names and types by evaluating points in-process until one succeeds.

    Only when the evaluator declares none and no earlier run recorded them. The probed rows are
    kept (written with the first part), so no work is repeated. If the first few points all fail
    the setup is broken, and that is one clear error before the sweep floods the store with it.
    """
    if not todo:
        return {}, []
    probe = Context(spec.evaluator.name, {}, {}, param_paths, spec.allow_code)
    tried: list[dict[str, Any]] = []
    candidates = [todo[i] for i in sorted({0, len(todo) // 3, (2 * len(todo)) // 3, len(todo) - 1})]
    for point in candidates:
        task = task_of(point)
        try:
            hardware = spec_from_dict(task["hardware"], source="sweep point")
            workload = resolve_workload(canonical_json(task["workload"]), spec.allow_code)
            result = flatten(dict(evaluator.fn(hardware, workload, dict(task["options"]))))
        except Exception as err:  # noqa: BLE001
            tried.append({"task": task, "error": err})
            continue
        types = {name: _arrow_kind(value) for name, value in result.items() if _arrow_kind(value) is not None}
        if spec.metrics is not None:
            unknown = [m for m in spec.metrics if m not in types]
            if unknown:
                raise AccelsimError(f"unknown metric {unknown[0]!r}", field="metrics", allowed=list(types))
            types = {m: types[m] for m in spec.metrics}
        # The probed point's row is built from this result by the workers' own code: a costly point
        # (a whole-model simulation, a COSMA solve) is not paid twice before any worker starts.
        context = Context(spec.evaluator.name, types, dict(spec.derived), param_paths, spec.allow_code)
        _check_derived_names(spec, point, context)
        derived = {name: compile_expression(text, f"derived.{name}") for name, text in spec.derived.items()}
        return types, [row_of_result(context, derived, task, result)]
    err = tried[0]["error"]
    raise AccelsimError(f"the first {len(tried)} probed points all failed, e.g. {type(err).__name__}: {err}",
                        field="evaluator.name") from None


def _arrow_kind(value: Any) -> str | None:
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"  # a learned number may be 3 now and 2.5 later; float64 holds both
    if isinstance(value, str):
        return "string"
    return None  # lists and objects are not columns


def _check_derived_names(spec: SweepSpec, point: Point, context: Context) -> None:
    known = set(flatten_paths(point.hardware)) | set(spec.parameters) | set(context.metric_types)
    for name, text in spec.derived.items():
        compile_expression(text, f"derived.{name}").require_names(known, f"derived.{name}")
        known.add(name)
