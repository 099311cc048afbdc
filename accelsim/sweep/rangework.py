"""A worker's share of a sweep: decode a range of point indices, evaluate, write the rows.

Why here and not in the sweep process: the sweep process used to expand every point, hash every
key, receive every row and write every part file, serially, which held a fifth to a third of all
the CPU of a sweep of cheap points. Now a worker gets a :class:`Job` once (the decoder, the keys
to skip, the columns) and then only ``(start, stop)`` ranges; for each index it decodes the point
(:mod:`accelsim.sweep.decode`), skips it if its key is already done, evaluates it
(:mod:`accelsim.sweep.worker`) and buffers the row. The sweep process gets back a
:class:`RangeResult`: the range's keys (for the manifest) and counts.

Where rows go:

- process pool and serial (``Job.out_dir`` set; one machine, one disk): the worker writes its own
  part files into the sweep directory (temporary name, then rename, so a part is whole or absent),
  whenever ``flush_rows`` rows are buffered or ``flush_s`` seconds passed, and always at the end
  of a range; a range counts as done only once its rows are on disk. On an interrupt the sweep
  process sets the pool's stop event and a thread in each worker writes what is buffered
  (:func:`start_stop_watcher`), so only the points still running are lost.
- Dask (``out_dir`` None; workers may be on other hosts with other disks): the range's rows come
  back as Parquet bytes, which the sweep process writes to a part file without parsing them.
"""
from __future__ import annotations

import dataclasses
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from accelsim.errors import AccelsimError
from accelsim.sweep.decode import PointSource
from accelsim.sweep.evaluators import get_evaluator
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.store import ERROR, OK, ResultStore, arrow_schema, rows_table
from accelsim.sweep.worker import Context, base_row, evaluate_task, fail_row

SKIPPED = ""  # a range's key for an index a constraint removes


@dataclass(frozen=True)
class Job:
    """What every range of one sweep shares; sent to each worker once."""

    token: str  # unique per run: a worker process keeps its state for the job it last saw
    context: Context
    source: PointSource
    skip: frozenset[str]  # keys not to evaluate: already on disk (or probed by the sweep process)
    columns: tuple[tuple[str, str], ...]
    out_dir: str | None  # write part files here; None: return the rows as Parquet bytes
    flush_rows: int = 2000
    flush_s: float = 1.0
    # Pool workers write at the end of every range, so a range counts as done only once its rows
    # are on disk (a worker that dies later loses none of them); in-process (serial) rows are
    # buffered across ranges and the executor writes the rest on the way out.
    flush_each_range: bool = True


@dataclass
class RangeResult:
    start: int
    stop: int
    keys: list[str]  # one per index; SKIPPED where a constraint removed the point
    ok: int = 0
    failed: int = 0
    already_done: int = 0
    elapsed_s: float = 0.0
    part_bytes: bytes | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # rows the sweep process writes itself

    @property
    def evaluated(self) -> int:
        """Points this range actually computed (not skipped by a constraint, not already on disk):
        what its ``elapsed_s`` paid for, so what a cost-per-point estimate may divide by."""
        return self.ok + self.failed


class _Writer:
    """Buffered rows of one worker and the part files they go to (see the module docstring)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.schema = arrow_schema(list(job.columns))
        self.store = ResultStore(job.out_dir) if job.out_dir is not None else None
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.last_flush = time.monotonic()
        self.unfit_ok = 0  # rows that were ok until a value did not fit its column
        self.stopped = False  # set when the sweep stops: no further point is started

    def unfit(self, row: dict[str, Any], why: str) -> dict[str, Any]:
        """A row with a value no column type can hold becomes that point's error row."""
        if row.get("status") == OK:
            self.unfit_ok += 1
        bad = {**row, "status": ERROR, "error": f"ValueError: {why}"}
        bad.update({name: None for name in (*self.job.context.metric_types, *self.job.context.derived)})
        return bad

    def add(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.rows.append(row)
            due = len(self.rows) >= self.job.flush_rows or time.monotonic() - self.last_flush >= self.job.flush_s
            if self.store is not None and due:
                self._flush_locked()

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        rows, self.rows = self.rows, []  # a failed write is not retried: those points stay pending
        self.last_flush = time.monotonic()
        if rows:
            assert self.store is not None, "a writer without a directory returns its rows (take_bytes)"
            self.store.write_table(rows_table(rows, self.schema, self.unfit))

    def take_bytes(self) -> bytes | None:
        with self.lock:
            rows, self.rows = self.rows, []
        if not rows:
            return None
        sink = io.BytesIO()
        pq.write_table(rows_table(rows, self.schema, self.unfit), sink)
        return sink.getvalue()


@dataclass
class _State:
    """A worker's warm state for one job: evaluator imported, expressions compiled, workloads built."""

    job: Job
    evaluator: Any
    derived: dict[str, Any]
    writer: _Writer
    workloads: dict[int, Any] = field(default_factory=dict)


_STATES: dict[tuple[str, int], _State] = {}  # (job token, thread): threads of one Dask worker share a process


def state_for(job: Job) -> _State:
    ident = (job.token, threading.get_ident())
    state = _STATES.get(ident)
    if state is None:
        for old in [k for k in _STATES if k[0] != job.token]:
            del _STATES[old]
        evaluator = get_evaluator(job.context.evaluator, allow_code=job.context.allow_code)
        derived = {n: compile_expression(t, f"derived.{n}") for n, t in job.context.derived.items()}
        # Each thread decodes with its own copy: the decoder caches the row it last decoded.
        source = PointSource(**{f: getattr(job.source, f) for f in job.source.__dataclass_fields__
                                if not f.startswith("_")})
        job = dataclasses.replace(job, source=source)
        state = _STATES[ident] = _State(job, evaluator, derived, _Writer(job))
    return state


def import_engines(evaluator: Any) -> None:
    """Import the modules an evaluator's points run (``engine_modules``), so the first point does not
    pay for them; one that fails to import is left for that point's error row to report."""
    import importlib

    for module in getattr(evaluator, "engine_modules", ()):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def warm(job: Job) -> None:
    """Import the evaluator and its engines once per worker, before the first range arrives."""
    import_engines(state_for(job).evaluator)


def run_range(job: Job, start: int, stop: int) -> RangeResult:
    """Evaluate raw indices ``start..stop-1``; the rows are on disk (or in ``part_bytes``) when this
    returns. A point's failure is its row; only a failed write raises."""
    began = time.perf_counter()
    state = state_for(job)
    job = state.job
    result = RangeResult(start, stop, [])
    seen: set[str] = set()
    unfit_before = state.writer.unfit_ok
    try:
        for raw in range(start, stop):
            if state.writer.stopped:
                break
            try:
                decoded = job.source.decode(raw)
            except AccelsimError as err:  # a combination of values the hardware model refuses
                decoded = err
            if decoded is None:
                result.keys.append(SKIPPED)
                continue
            key = job.source.invalid_key(raw) if isinstance(decoded, AccelsimError) else decoded[0].key
            result.keys.append(key)
            if key in job.skip or key in seen:
                result.already_done += key in job.skip
                continue
            seen.add(key)
            if isinstance(decoded, AccelsimError):
                row = invalid_row(job, raw, key, decoded)
            else:
                point, hardware = decoded
                row = evaluate_task(job.context, state.evaluator, state.derived, point, hardware,
                                    _workload(state, point))
            if row["status"] == OK:
                result.ok += 1
            else:
                result.failed += 1
            state.writer.add(row)
    finally:
        if job.out_dir is not None and job.flush_each_range:
            state.writer.flush()
    if job.out_dir is None:
        result.part_bytes = state.writer.take_bytes()
    moved = state.writer.unfit_ok - unfit_before
    result.ok -= moved
    result.failed += moved
    result.elapsed_s = time.perf_counter() - began
    return result


def _workload(state: _State, point: Any) -> Any:
    from accelsim.sweep.spec import canonical_json
    from accelsim.sweep.workloads import resolve_workload

    w = point.index % len(state.job.source.workloads)
    obj = state.workloads.get(w)
    if obj is None:
        obj = state.workloads[w] = resolve_workload(canonical_json(point.workload), state.job.context.allow_code)
    return obj


def invalid_row(job: Job, raw: int, key: str, err: AccelsimError) -> dict[str, Any]:
    """A point whose combination of values the hardware model refuses: an error row (its key
    hashes the parameters and the spec's base, there being no valid design to hash)."""
    row = base_row(job.context, {"index": raw, "key": key, "params": job.source.params_of_row(
        raw // len(job.source.workloads)), "workload": job.source.workloads[raw % len(job.source.workloads)]})
    fail_row(row, job.context, ERROR, f"AccelsimError: {err}")
    return row


def died_row(job: Job, raw: int, why: str) -> dict[str, Any] | None:
    """The error row of a point whose worker died evaluating it (decoded again here, in the sweep
    process); None if the index holds no point."""
    try:
        decoded = job.source.decode(raw)
    except AccelsimError:
        return None
    if decoded is None:
        return None
    point, _ = decoded
    row = base_row(job.context, {"index": raw, "key": point.key, "params": point.params, "workload": point.workload})
    fail_row(row, job.context, ERROR, why)
    return row


# --- process-pool plumbing --------------------------------------------------------------------
_POOL_JOB: Job | None = None
_STARTED: Any = None


def init_pool_worker(job: Job, started: Any, stop: Any, acks: Any) -> None:
    """Initializer of a pool worker: signals, the job (inherited through fork, not pickled per
    task), warm imports, and the thread that writes buffered rows when the sweep is stopped."""
    from accelsim.sweep.worker import init_worker

    global _POOL_JOB, _STARTED
    init_worker()
    _POOL_JOB, _STARTED = job, started
    warm(job)
    if stop is not None:
        start_stop_watcher(state_for(job).writer, stop, acks)


def start_stop_watcher(writer: _Writer, stop: Any, acks: Any) -> None:
    def watch() -> None:
        stop.wait()
        writer.stopped = True
        try:
            writer.flush()
        except Exception:  # noqa: BLE001 - the sweep is stopping; the rows stay pending
            pass
        finally:
            acks.put(1)

    threading.Thread(target=watch, name="accelsim-sweep-stop", daemon=True).start()


def pool_range(start: int, stop: int, range_id: int) -> RangeResult:
    """A task of a pool worker: announce the range (so a dying worker's range is known), run it."""
    if _STARTED is not None:
        _STARTED.put(range_id)
    assert _POOL_JOB is not None, "pool worker without a job"
    return run_range(_POOL_JOB, start, stop)


def parquet_table(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))
