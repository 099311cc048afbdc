"""Running a sweep: in-process, on a local process pool, or on a Dask cluster; resumable.

The parent expands the spec into points (every input error surfaces here, before any work),
drops the points whose key is already on disk, hands the rest to an executor in small chunks and
streams the rows into the store as chunks finish: a part file whenever ``flush_rows`` rows are
buffered or ``flush_s`` seconds passed, and always on the way out (Ctrl-C included).

Failure handling, which is what makes a long sweep safe to leave alone:

- a point whose evaluator raises becomes a row with ``status`` ``error`` (or ``infeasible`` for an
  :class:`~accelsim.errors.InfeasibleError`) and its message; the sweep goes on;
- a worker process that dies (segfault, OOM kill, ``os._exit``) breaks the process pool; the
  chunks that were running are re-run one point at a time in a fresh single-worker pool, so the
  point that kills its worker is found and recorded as an error, and the others complete;
  on Dask a ``KilledWorker`` chunk is split the same way;
- Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) writes every finished row before
  the exception propagates. A re-run computes only what is missing.

Workers ignore SIGINT so that only the parent decides what an interrupt means.
"""
from __future__ import annotations

import math
import multiprocessing
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import accelsim
from accelsim.errors import AccelsimError, InfeasibleError
from accelsim.hardware.base import spec_from_dict
from accelsim.report import flatten
from accelsim.sweep.evaluators import get_evaluator
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.spec import RESERVED_COLUMNS, Point, SweepSpec, canonical_json, flatten_paths
from accelsim.sweep.store import ERROR, INFEASIBLE, OK, ResultStore, arrow_schema
from accelsim.sweep.workloads import resolve_workload

EXECUTORS = ("serial", "process", "dask")
MAX_ERROR_CHARS = 2000


# --- the work of one chunk (runs in a worker) ------------------------------------------------
@dataclass(frozen=True)
class Context:
    """What every point of a sweep shares; shipped once per chunk."""

    evaluator: str
    metric_types: dict[str, str]
    derived: dict[str, str]
    param_paths: tuple[str, ...]
    allow_code: bool = False  # the parent's opt-in for module:function references


_started_queue: Any = None  # set in process-pool workers: chunk ids are reported here on start


def _init_worker(started: Any) -> None:
    global _started_queue
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker must not inherit the CLI's handler
    _started_queue = started


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the sweep process dies (even by SIGKILL), so a
    killed sweep leaves no orphan workers behind. Elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def evaluate_chunk(context: Context, tasks: list[dict[str, Any]], chunk_id: int = -1) -> list[dict[str, Any]]:
    """Evaluate points; never raises for a point's failure (that becomes its row)."""
    if _started_queue is not None:
        _started_queue.put(chunk_id)
    evaluator = get_evaluator(context.evaluator, allow_code=context.allow_code)
    derived = {name: compile_expression(text, f"derived.{name}") for name, text in context.derived.items()}
    return [_evaluate_point(context, evaluator, derived, task) for task in tasks]


def _evaluate_point(context: Context, evaluator: Any, derived: dict, task: dict[str, Any]) -> dict[str, Any]:
    row = _base_row(context, task)
    try:
        hardware = spec_from_dict(task["hardware"], source="sweep point")
        workload = resolve_workload(canonical_json(task["workload"]), context.allow_code)
        result = flatten(dict(evaluator.fn(hardware, workload, dict(task["options"]))))
        for name, kind in context.metric_types.items():
            row[name] = _coerce(result.get(name), kind, name)
        if derived:
            env = {**flatten_paths(task["hardware"]), **task["params"], **result,
                   **{n: row[n] for n in context.metric_types}}
            for name, expr in derived.items():
                value = expr(env)
                row[name] = None if value is None else float(value)
                env[name] = row[name]
    except InfeasibleError as err:
        _fail(row, context, INFEASIBLE, err)
    except Exception as err:  # noqa: BLE001 - any failure of one point is that point's result
        _fail(row, context, ERROR, err)
    return row


def _base_row(context: Context, task: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point": task["index"], "key": task["key"], "status": OK, "error": None,
                           "workload": task["workload"]["label"], "evaluator": context.evaluator}
    row.update(task["params"])
    return row


def _fail(row: dict[str, Any], context: Context, status: str, err: BaseException | str) -> None:
    row["status"] = status
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    row["error"] = text[:MAX_ERROR_CHARS]
    for name in (*context.metric_types, *context.derived):
        row[name] = None


def _coerce(value: Any, kind: str, name: str) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if kind == "int64":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"metric {name} = {value} is not an integer")
        return int(value)
    if kind == "float64":
        return float(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _task(point: Point) -> dict[str, Any]:
    return {"index": point.index, "key": point.key, "params": point.params, "hardware": point.hardware,
            "workload": point.workload, "options": point.options}


# --- executors: each yields (chunk, rows) as chunks finish ---------------------------------------
Chunk = list[dict[str, Any]]


def _serial(context: Context, chunks: list[Chunk]) -> Iterator[tuple[Chunk, list[dict]]]:
    for chunk in chunks:
        yield chunk, evaluate_chunk(context, chunk)


def _died_rows(context: Context, chunk: Chunk, why: str) -> list[dict[str, Any]]:
    rows = []
    for task in chunk:
        row = _base_row(context, task)
        _fail(row, context, ERROR, why)
        rows.append(row)
    return rows


def _process(context: Context, chunks: list[Chunk], workers: int) -> Iterator[tuple[Chunk, list[dict]]]:
    mp = multiprocessing.get_context("fork")
    todo: list[Chunk] = list(chunks)
    suspects: list[Chunk] = []
    while todo:
        started = mp.SimpleQueue()  # written synchronously: a worker killed right after still told us
        pool = ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker, initargs=(started,))
        futures = {pool.submit(evaluate_chunk, context, c, i): i for i, c in enumerate(todo)}
        finished: set[int] = set()
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in done:
                    rows = fut.result()  # BrokenProcessPool if any worker died
                    finished.add(futures[fut])
                    yield todo[futures[fut]], rows
            todo = []
        except BrokenProcessPool:
            began = _drain(started)
            crashed = [todo[i] for i in began if i not in finished]
            for chunk in crashed:
                suspects.extend([task] for task in chunk)
            todo = [c for i, c in enumerate(todo) if i not in finished and i not in began]
        finally:
            _stop(pool)
    # The points that were running when a worker died, one at a time, each in a fresh worker
    # after a crash: only the culprit can be blamed.
    pool = None
    try:
        for chunk in suspects:
            if pool is None:
                pool = ProcessPoolExecutor(1, mp_context=mp, initializer=_init_worker, initargs=(None,))
            try:
                yield chunk, pool.submit(evaluate_chunk, context, chunk).result()
            except BrokenProcessPool:
                _stop(pool)
                pool = None
                yield chunk, _died_rows(context, chunk, "WorkerDied: the worker process evaluating this point died")
    finally:
        if pool is not None:
            _stop(pool)


def _drain(q: Any) -> set[int]:
    seen: set[int] = set()
    while not q.empty():
        seen.add(q.get())
    return seen


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop now: cancel queued chunks and end running workers (their rows would be discarded)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def connect_dask(address: Any, timeout_s: float = 5.0) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``address`` (or the client passed in); True if we own it."""
    from distributed import Client

    if isinstance(address, Client):
        return address, False
    if not isinstance(address, str) or "://" not in address:
        raise AccelsimError(f"expected a scheduler address like tcp://host:8786, got {address!r}", field="--dask")
    scheme, _, rest = address.partition("://")
    if scheme not in ("tcp", "inproc"):  # inproc: a LocalCluster(processes=False) in this process
        # Other schemes need settings an address cannot carry (tls/wss: certificates; ws, ucx:
        # optional packages), and a Client that fails on them hangs ~10 s in its destructor.
        # Such clusters are reached by building a distributed.Client and passing it in.
        raise AccelsimError(f"unsupported scheme {scheme}://; for TLS or other transports build a "
                            "distributed.Client and pass it as run_sweep(dask=client)",
                            field="--dask", allowed="tcp://host:port, inproc://...")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host and port.isdigit():
        try:  # a refused or unroutable address fails here in milliseconds, not after the client's timeout
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout_s, 2.0)).close()
        except OSError as err:
            raise AccelsimError(f"cannot reach the Dask scheduler at {address}: {err}", field="--dask") from None
    client = _client_within(Client, address, timeout_s)
    return client, True


def _client_within(client_cls: Any, address: str, timeout_s: float) -> Any:
    """``Client(address)`` with a hard deadline, every failure as one AccelsimError.

    Why a thread: ``Client``'s own ``timeout`` does not cover every stage of the handshake; at a
    port that accepts TCP but does not speak Dask's protocol (an HTTP server, say) it was seen to
    wait well past a minute. A daemon thread that has not finished by the deadline is abandoned
    (the CLI exits right after the error). Unknown schemes (``tls://`` without certificates) raise
    TypeError/ValueError from inside distributed; those are a bad address too.
    """
    import threading

    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def connect() -> None:
        try:
            outcome["client"] = client_cls(address, timeout=f"{timeout_s}s", set_as_default=False)
        except BaseException as err:  # noqa: BLE001 - reported in the caller's thread
            # Only the text crosses threads: the traceback holds the half-built Client, whose
            # __del__ blocks ~10 s trying to close; it is collected here, in the abandoned thread.
            text = (str(err).strip().splitlines() or [""])[0]
            outcome["error"] = type(err).__name__ + (f": {text}" if text else "")
        finally:
            finished.set()

    threading.Thread(target=connect, name="accelsim-dask-connect", daemon=True).start()
    if not finished.wait(timeout_s + 2.0):
        raise AccelsimError(f"no Dask scheduler answered at {address} within {timeout_s + 2.0:g} s "
                            "(is it a Dask scheduler port?)", field="--dask")
    if "error" in outcome:
        raise AccelsimError(f"cannot connect to the Dask scheduler at {address}: {outcome['error']}",
                            field="--dask")
    return outcome["client"]


def _dask(context: Context, chunks: list[Chunk], client: Any) -> Iterator[tuple[Chunk, list[dict]]]:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    futures = {}
    try:
        def submit(chunk: Chunk) -> Any:
            fut = client.submit(evaluate_chunk, context, chunk, pure=False)
            futures[fut] = chunk
            return fut

        stream = as_completed([submit(c) for c in chunks], loop=client.loop)
        for fut in stream:
            chunk = futures.pop(fut)
            try:
                rows = fut.result()
            except KilledWorker:
                if len(chunk) > 1:  # find the culprit: retry its points one by one
                    for task in chunk:
                        stream.add(submit([task]))
                    continue
                rows = _died_rows(context, chunk, "KilledWorker: Dask workers died evaluating this point")
            except Exception as err:  # noqa: BLE001 - e.g. a pickling failure: record, go on
                rows = _died_rows(context, chunk, f"{type(err).__name__}: {err}")
            yield chunk, rows
    finally:
        if futures:
            client.cancel(list(futures))


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
              chunk_size: int | None = None, allow_code: bool = False) -> SweepResult:
    """Run (or resume) ``spec`` into ``out_dir``; see the module docstring for the guarantees.

    ``executor`` is serial, process or dask (``dask`` then gives a scheduler address or a
    ``distributed.Client``; passing ``dask`` alone implies the dask executor). ``allow_code`` lets
    the spec's ``module:function`` builders and evaluators be imported (off by default: a sweep
    file is data; see :mod:`accelsim.sweep.plugins`).
    """
    spec = _as_spec(spec, allow_code)
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
    store = ResultStore(out_dir)
    statuses = store.statuses()
    skip = {OK} if retry_failed else {OK, ERROR, INFEASIBLE}
    todo = [p for p in points if statuses.get(p.key) not in skip]
    already_done = len(points) - len(todo)

    client, own_client = (connect_dask(dask) if executor == "dask" else (None, False))
    try:
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
        store.write_manifest({"name": spec.name, "accelsim": accelsim.__version__, "spec": spec.model_dump(mode="json"),
                              "keys": [p.key for p in points], "columns": columns,
                              "schema_basis": _schema_basis(spec),
                              "skipped_by_constraints": expansion.skipped_by_constraints,
                              "duplicates": expansion.duplicates, "updated_unix_s": time.time()})
        schema = arrow_schema([tuple(c) for c in columns])  # type: ignore[misc]

        probed = {r["key"] for r in probe_rows}
        tasks = [_task(p) for p in todo if p.key not in probed]
        n_workers = _worker_count(executor, workers, client)
        size = chunk_size or _chunk_size(len(tasks), n_workers, executor)
        chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]

        buffer: list[dict[str, Any]] = []
        counts = {"ok": 0, "failed": 0, "parts": 0}
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if buffer:
                store.append(buffer, schema)
                counts["parts"] += 1
                buffer.clear()
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
        if executor == "serial":
            stream = _serial(context, chunks)
        elif executor == "process":
            stream = _process(context, chunks, n_workers)
        else:
            stream = _dask(context, chunks, client)
        try:
            take(probe_rows)
            for _chunk, rows in stream:
                take(rows)
        finally:
            stream.close()
            flush()
            progress.close()
    finally:
        if own_client:
            client.close()
    return SweepResult(Path(out_dir), len(points), expansion.skipped_by_constraints, already_done,
                       counts["ok"] + counts["failed"], counts["ok"], counts["failed"], counts["parts"])


def _as_spec(spec: SweepSpec | dict | str | Path, allow_code: bool) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec.permitting_code() if allow_code and not spec.allow_code else spec
    if isinstance(spec, dict):
        return SweepSpec.from_dict(spec, allow_code=allow_code)
    return SweepSpec.from_yaml(spec, allow_code=allow_code)


def _worker_count(executor: str, workers: int | None, client: Any) -> int:
    if executor == "serial":
        return 1
    if executor == "dask":
        return max(1, sum(client.nthreads().values()))
    return workers or multiprocessing.cpu_count()


def _chunk_size(n_tasks: int, workers: int, executor: str) -> int:
    """Enough chunks per worker to balance load and show progress, few enough that the per-chunk
    overhead (pickling, IPC, a Dask task ~1 ms) stays small next to the work."""
    if executor == "serial":
        return 64
    return max(1, min(500, math.ceil(n_tasks / (workers * 8))))


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
        task = _task(point)
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
        # Re-evaluate the probed point through the normal path so its row is built the same way.
        context = Context(spec.evaluator.name, types, dict(spec.derived), param_paths, spec.allow_code)
        _check_derived_names(spec, point, context)
        return types, evaluate_chunk(context, [task])
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
