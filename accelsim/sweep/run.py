"""Running a sweep: in-process, on a local process pool, or on a Dask cluster; resumable.

The sweep process does little itself, so that it does not compete with the workers for a core: it
checks the spec (each swept value once, not each point), builds a :class:`PointSource` (the
base designs, workloads and key parts, from which any point can be decoded from its index), reads
the keys already on disk, and hands the executor (:mod:`accelsim.sweep.executors`) index ranges
sized from the measured cost of a point (:mod:`accelsim.sweep.chunking`). Workers decode, hash,
skip what is done, evaluate, and write their own part files (:mod:`accelsim.sweep.rangework`);
each range reports its keys back, and once every range has, the manifest gets the spec's key list
(first occurrence of each key, in point order), which orders and filters :func:`load_results`.

Failure handling, which is what makes a long sweep safe to leave alone:

- a point whose evaluator raises becomes a row with ``status`` ``error`` (or ``infeasible`` for an
  :class:`~accelsim.errors.InfeasibleError`) and its message; the sweep goes on; so does a
  combination of values the hardware model refuses (each value alone is checked before any work);
- a worker process that dies (segfault, OOM kill, ``os._exit``) breaks the process pool; the
  ranges that had not started are rerun in a new pool and those that were running are rerun one
  index at a time in a fresh single-worker pool, so the point that kills its worker is found and
  recorded as an error, and the others complete; on Dask a ``KilledWorker`` range is split the
  same way;
- Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) makes every worker write the rows it
  holds before the pool is stopped, so only the points still running are lost; the manifest then
  lists no keys (the table shows every row on disk) until a run completes. A re-run computes
  only what is missing.

Workers ignore SIGINT so that only the sweep process decides what an interrupt means.
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
from accelsim.sweep.decode import PointSource, no_points_error
from accelsim.sweep.evaluators import engine_fingerprint, get_evaluator
from accelsim.sweep.executors import (  # noqa: F401
    DASK_MAX_CHUNK,
    _client_within,
    connect_dask,
    dask_ranges,
    process_ranges,
    serial_ranges,
)
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.lock import directory_lock
from accelsim.sweep.rangework import SKIPPED, Job, RangeResult, _Writer
from accelsim.sweep.spec import (
    RESERVED_COLUMNS,
    Point,
    SweepSpec,
    canonical_json,
    flatten_paths,
)
from accelsim.sweep.store import ERROR, INFEASIBLE, OK, ResultStore, rows_table
from accelsim.sweep.worker import Context, evaluate_task, row_of_result, task_of
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

    evaluator = get_evaluator(spec.evaluator.name, allow_code=spec.allow_code)
    source = PointSource.of(spec, engine_fingerprint(evaluator))
    source.check_values()  # a swept value the hardware model refuses fails here, before any work
    if evaluator.kinds is not None:
        kinds = {b["kind"] for b in source.bases.values()}
        if not kinds <= set(evaluator.kinds):
            raise AccelsimError(f"evaluator {evaluator.name!r} cannot run hardware of kind {sorted(kinds)}",
                                field="evaluator.name", allowed=evaluator.kinds)
    client, own_client = (connect_dask(dask) if executor == "dask" else (None, False))
    try:
        with directory_lock(out_dir):
            return _run_locked(spec, source, evaluator, Path(out_dir), executor=executor, workers=workers,
                               client=client, retry_failed=retry_failed, progress=progress, flush_rows=flush_rows,
                               flush_s=flush_s, chunk_size=chunk_size)
    finally:
        if own_client:
            client.close()


def _run_locked(spec: SweepSpec, source: PointSource, evaluator: Any, out_dir: Path, *, executor: str,
                workers: int | None, client: Any, retry_failed: bool, progress: Progress, flush_rows: int,
                flush_s: float, chunk_size: int | None) -> SweepResult:
    """The sweep proper, with the directory's lock held: resume, write, and gather the ranges."""
    store = ResultStore(out_dir)
    skip_states = {OK} if retry_failed else {OK, ERROR, INFEASIBLE}

    def on_disk() -> frozenset[str]:
        return frozenset(k for k, status in store.statuses().items() if status in skip_states)

    done = on_disk()
    param_paths = tuple(spec.parameters)
    probe_rows: list[dict[str, Any]] = []
    columns = _columns(spec, store, param_paths)
    if columns is None:
        metric_types, probe_rows = _probe_metrics(spec, evaluator, source, done, param_paths)
        columns = _assemble_columns(spec, param_paths, metric_types)
    context = Context(spec.evaluator.name, _metric_types(columns, spec), dict(spec.derived), param_paths,
                      spec.allow_code)
    _check_derived_names(spec, source.bases[next(iter(source.bases))], context)
    existing = store.read_manifest()
    if store.parts() and existing and existing.get("columns") and existing["columns"] != columns:
        raise AccelsimError("holds results with different columns; write this sweep to another directory",
                            source=str(out_dir))
    manifest = {"name": spec.name, "accelsim": accelsim.__version__, "spec": spec.model_dump(mode="json"),
                "keys": None, "points_before_constraints": source.raw_count, "columns": columns,
                "schema_basis": _schema_basis(spec)}
    with _disk_errors(out_dir):
        store.write_manifest({**manifest, "updated_unix_s": time.time()})
    parts_before = len(store.parts())
    if executor == "process" and not probe_rows:
        probe_rows = _warm_point(context, evaluator, source, done, spec.allow_code)
    probed = frozenset(r["key"] for r in probe_rows)
    job = Job(f"{time.time_ns():x}-{id(store):x}", context, source, done | probed,
              tuple((name, kind) for name, kind in columns), str(out_dir), flush_rows, flush_s)
    writer = _Writer(job)  # the rows this process writes: the probe's, and those of workers that died
    counts = {"ok": 0, "failed": 0, "already_done": -len(probed)}
    keys: list[str | None] = [None] * source.raw_count

    def take(result: RangeResult) -> None:
        keys[result.start:result.stop] = result.keys
        if result.part_bytes:
            store.write_bytes(result.part_bytes)
        before = writer.unfit_ok
        if result.rows:
            store.write_table(rows_table(result.rows, writer.schema, writer.unfit))
        moved = writer.unfit_ok - before
        counts["ok"] += result.ok - moved
        counts["failed"] += result.failed + moved
        counts["already_done"] += result.already_done
        progress.advance(len(result.keys) - result.failed - moved, result.failed + moved)

    progress.start(source.raw_count, 0)
    if executor == "serial":
        stream = serial_ranges(job, source.raw_count, chunk_size)
    elif executor == "process":
        stream = process_ranges(job, source.raw_count, _worker_count(executor, workers, client),
                                lambda: on_disk() | probed, chunk_size=chunk_size)
    else:
        stream = dask_ranges(job, source.raw_count, client, chunk_size=chunk_size)
    complete = False
    try:
        with _disk_errors(out_dir):
            if probe_rows:
                take(RangeResult(0, 0, [], ok=sum(r["status"] == OK for r in probe_rows),
                                 failed=sum(r["status"] != OK for r in probe_rows), rows=probe_rows))
            for result in stream:
                take(result)
        complete = True
    finally:
        stream.close()
        progress.close()
        if complete:
            manifest.update(_key_list(keys))
        with _disk_errors(out_dir):
            store.write_manifest({**manifest, "updated_unix_s": time.time()})
    if not manifest["keys"]:
        store.manifest_path.unlink(missing_ok=True)
        raise no_points_error(manifest["skipped_by_constraints"])
    return SweepResult(out_dir, len(manifest["keys"]), manifest["skipped_by_constraints"], counts["already_done"],
                       counts["ok"] + counts["failed"], counts["ok"], counts["failed"],
                       len(store.parts()) - parts_before)


def _warm_point(context: Context, evaluator: Any, source: PointSource, done: frozenset[str],
                allow_code: bool) -> list[dict[str, Any]]:
    """Evaluate the first pending point here, before the pool forks, and keep its row.

    Why: whatever that point imports (its engine, a mapper, a solver) is then imported once, in
    this process, and every forked worker inherits it instead of paying it again (about 0.1 s of
    CPU per worker for the systolic engine, more for a mapper)."""
    points = _probe_points(source, done, [0])
    if not points:
        return []
    point = points[0]
    decoded = source.decode(point.index)
    assert decoded is not None
    derived = {name: compile_expression(text, f"derived.{name}") for name, text in context.derived.items()}
    workload = resolve_workload(canonical_json(point.workload), allow_code)
    return [evaluate_task(context, evaluator, derived, point, decoded[1], workload)]


def _key_list(keys: list[str | None]) -> dict[str, Any]:
    """The manifest's view of a finished pass: the spec's keys in point order (first occurrence of
    each), and how many indices constraints removed or repeated an earlier point."""
    ordered: list[str] = []
    seen: set[str] = set()
    skipped = duplicates = 0
    for key in keys:
        if key == SKIPPED:
            skipped += 1
        elif key in seen:
            duplicates += 1
        else:
            seen.add(key)
            ordered.append(key)  # type: ignore[arg-type]
    return {"keys": ordered, "skipped_by_constraints": skipped, "duplicates": duplicates}


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


def _probe_metrics(spec: SweepSpec, evaluator: Any, source: PointSource, done: frozenset[str],
                   param_paths: tuple[str, ...]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Learn metric names and types by evaluating points in-process until one succeeds.

    Only when the evaluator declares none and no earlier run recorded them. The probed rows are
    kept (written first), so no work is repeated. If the first few points all fail the setup is
    broken, and that is one clear error before the sweep floods the store with it.
    """
    tried: list[dict[str, Any]] = []
    n = source.raw_count
    for point in _probe_points(source, done, sorted({0, n // 3, (2 * n) // 3, n - 1})):
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
        _check_derived_names(spec, point.hardware, context)
        derived = {name: compile_expression(text, f"derived.{name}") for name, text in spec.derived.items()}
        return types, [row_of_result(context, derived, task, result)]
    if not tried:
        return {}, []
    err = tried[0]["error"]
    raise AccelsimError(f"the first {len(tried)} probed points all failed, e.g. {type(err).__name__}: {err}",
                        field="evaluator.name") from None


def _probe_points(source: PointSource, done: frozenset[str], raws: list[int], scan: int = 64) -> list[Point]:
    """Up to one point to evaluate near each of ``raws``: the first index from there (at most
    ``scan`` on) that a constraint keeps, the hardware model accepts and is not done yet."""
    found: dict[str, Point] = {}
    for raw in raws:
        for i in range(raw, min(raw + scan, source.raw_count)):
            try:
                decoded = source.decode(i)
            except AccelsimError:
                continue
            if decoded is not None and decoded[0].key not in done:
                found.setdefault(decoded[0].key, decoded[0])
                break
    return list(found.values())


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


def _check_derived_names(spec: SweepSpec, hardware: dict[str, Any], context: Context) -> None:
    known = set(flatten_paths(hardware)) | set(spec.parameters) | set(context.metric_types)
    for name, text in spec.derived.items():
        compile_expression(text, f"derived.{name}").require_names(known, f"derived.{name}")
        known.add(name)
