"""Where a sweep's index ranges run: in-process, on a local process pool, or on a Dask cluster.

Every executor yields :class:`~accelsim.sweep.rangework.RangeResult` s as ranges finish, and
cuts the index space into ranges sized from the measured cost of a point
(:class:`~accelsim.sweep.chunking.ChunkSizer`): the first ranges are single points, later ones
hold about ``target_s`` of work, and none more than an even share of what is left over the ranges
in flight, so the last ranges are small and the tail spreads over every worker.

What a worker needs besides a range (the decoder, the keys to skip, the columns) is a
:class:`~accelsim.sweep.rangework.Job`, sent once per worker: through ``fork`` to pool workers,
by one ``scatter(broadcast=True)`` to Dask workers.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from accelsim.sweep.chunking import ChunkSizer
from accelsim.sweep.dask_connect import _client_within, connect_dask  # noqa: F401 - re-exported
from accelsim.sweep.rangework import (
    Job,
    RangeResult,
    died_row,
    init_pool_worker,
    pool_range,
    run_range,
    state_for,
)

# Dask returns a range's rows only when it completes, so its ranges are bounded in time: what an
# interrupt may lose per thread.
DASK_MAX_CHUNK = 4096
DASK_CHUNK_S = 1.0
# Ranges in flight per worker thread: the second lets a worker start its next range without a
# round trip. One per thread (so a range can never queue behind a long one) measured no better:
# 80 COSMA points on 2 LocalCluster workers, 16.1 s vs 14.9 s (one run each).
DASK_SLOTS_PER_THREAD = 2
# Pool workers write their rows themselves (and on a stop), so range size does not change what an
# interrupt loses; 0.5 s of work keeps per-range costs (a part file, a task) small.
POOL_MAX_CHUNK = 8192
POOL_CHUNK_S = 0.5
SERIAL_CHUNK_S = 1.0
# No range below this much work (see ChunkSizer): the tail's imbalance stays under it.
MIN_RANGE_S = 0.05
STOP_GRACE_S = 5.0  # how long an interrupted pool's workers get to write their buffered rows

Ranges = Iterator[RangeResult]


class _Cutter:
    """The ranges still to issue: retried ones first, then fresh ones cut from a cursor."""

    def __init__(self, total: int, sizer: ChunkSizer) -> None:
        self.total, self.cursor, self.sizer = total, 0, sizer
        self.retry: deque[tuple[int, int]] = deque()

    def __bool__(self) -> bool:
        return bool(self.retry) or self.cursor < self.total

    def next(self) -> tuple[int, int]:
        if self.retry:
            return self.retry.popleft()
        start = self.cursor
        self.cursor += self.sizer.next_size(self.total - start)
        return start, self.cursor


def serial_ranges(job: Job, total: int, chunk_size: int | None = None) -> Ranges:
    """In this process; rows are written every ``flush_rows`` rows or ``flush_s`` seconds and on
    the way out, Ctrl-C included (a failed write is not retried: those points stay pending)."""
    job = dataclasses.replace(job, flush_each_range=False)
    writer = state_for(job).writer
    cutter = _Cutter(total, ChunkSizer(SERIAL_CHUNK_S, POOL_MAX_CHUNK, 1, chunk_size))
    try:
        while cutter:
            start, stop = cutter.next()
            result = run_range(job, start, stop)
            cutter.sizer.observe(result.evaluated, result.elapsed_s)
            yield result
    finally:
        before = writer.unfit_ok
        writer.flush()
    moved = writer.unfit_ok - before
    if moved:  # rows that became errors at the last write: correct the counts
        yield RangeResult(total, total, [], ok=-moved, failed=moved)


def process_ranges(job: Job, total: int, workers: int, refresh: Callable[[], frozenset[str]],
                   chunk_size: int | None = None, target_s: float = POOL_CHUNK_S) -> Ranges:
    """A local pool, two ranges in flight per worker. A pool broken by a dying worker is rebuilt
    (``refresh`` gives the keys now on disk, so nothing written is redone); the ranges that were
    running are then re-run one index at a time, each in a fresh single-worker pool, so only the
    point that kills its worker is blamed (a ``WorkerDied`` error row)."""
    mp = multiprocessing.get_context("fork")
    cutter = _Cutter(total, ChunkSizer(target_s, POOL_MAX_CHUNK, 2 * workers, chunk_size, MIN_RANGE_S))
    suspects: list[int] = []
    while cutter:
        started, stop, acks = mp.SimpleQueue(), mp.Event(), mp.SimpleQueue()
        issued: dict[int, tuple[int, int]] = {}
        futures: dict[Any, int] = {}
        finished: set[int] = set()
        ended = broken = False
        pool: ProcessPoolExecutor | None = None
        try:
            with _signals_deferred():  # the first submit forks the workers
                pool = ProcessPoolExecutor(workers, mp_context=mp, initializer=init_pool_worker,
                                           initargs=(job, started, stop, acks))
                _refill(pool, cutter, issued, futures)
            while futures:
                done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for fut in done:
                    result = fut.result()  # BrokenProcessPool if a worker died; OSError if a write failed
                    i = futures.pop(fut)
                    finished.add(i)
                    cutter.sizer.observe(result.evaluated, result.elapsed_s)
                    yield result
                _refill(pool, cutter, issued, futures)
            ended = True
        except BrokenProcessPool:
            broken = True
        finally:
            if pool is not None:
                if not ended and not broken:  # stopped early (Ctrl-C, an error): workers write what they hold
                    stop.set()
                    _await_acks(acks, len(getattr(pool, "_processes", None) or {}))
                _stop(pool)
        if not broken:
            break
        began = _drain(started)
        for i in sorted(set(issued) - finished):
            if i in began:
                suspects.extend(range(*issued[i]))
            else:
                cutter.retry.append(issued[i])
        job = dataclasses.replace(job, skip=refresh())
    if suspects:
        yield from _one_by_one(dataclasses.replace(job, skip=refresh()), suspects, mp)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while workers are forked, then act on them.

    Why: a signal that lands while ``os.fork`` runs its at-fork hooks raises KeyboardInterrupt
    inside a hook, where Python prints "Exception ignored" and drops it, and the sweep ran on as
    if never interrupted (seen when Ctrl-C came the moment the first part file appeared). Only
    the main thread may set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for signum in caught[:1]:
        handler = previous[signum]
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)


def _refill(pool: ProcessPoolExecutor, cutter: _Cutter, issued: dict[int, tuple[int, int]],
            futures: dict[Any, int]) -> None:
    while cutter and len(futures) < cutter.sizer.slots:
        start, stop = cutter.next()
        range_id = len(issued)
        issued[range_id] = (start, stop)
        futures[pool.submit(pool_range, start, stop, range_id)] = range_id


def _one_by_one(job: Job, suspects: list[int], mp: Any) -> Ranges:
    pool = None
    try:
        for raw in suspects:
            if pool is None:
                pool = ProcessPoolExecutor(1, mp_context=mp, initializer=init_pool_worker,
                                           initargs=(job, None, None, None))
            try:
                yield pool.submit(pool_range, raw, raw + 1, -1).result()
            except BrokenProcessPool:
                _stop(pool)
                pool = None
                yield _died(job, raw, "WorkerDied: the worker process evaluating this point died")
    finally:
        if pool is not None:
            _stop(pool)


def _died(job: Job, raw: int, why: str) -> RangeResult:
    """The result of a one-point range whose worker died: its error row, written by the sweep."""
    row = died_row(job, raw, why)
    result = RangeResult(raw, raw + 1, [row["key"] if row else ""], failed=int(row is not None))
    result.rows = [row] if row else []
    return result


def _await_acks(acks: Any, expected: int) -> None:
    import time

    deadline = time.monotonic() + STOP_GRACE_S
    got = 0
    while got < expected and time.monotonic() < deadline:
        if acks._reader.poll(min(0.05, max(0.0, deadline - time.monotonic()))):
            acks.get()
            got += 1


def _drain(q: Any) -> set[int]:
    seen: set[int] = set()
    while not q.empty():
        seen.add(q.get())
    return seen


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop now: cancel queued ranges and end running workers."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def dask_range(job: Job, start: int, stop: int) -> RangeResult:
    """A Dask task: the range's rows come back as Parquet bytes (the worker may not share our disk)."""
    return run_range(job, start, stop)


def dask_ranges(job: Job, total: int, client: Any, target_s: float = DASK_CHUNK_S,
                chunk_size: int | None = None) -> Ranges:
    """Ranges of about ``target_s`` of worker time, two in flight per worker thread: an interrupt
    loses about ``target_s`` of work per thread. A range whose worker died (``KilledWorker``) is
    retried index by index to find the culprit; the scheduler reruns the others elsewhere."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    job = dataclasses.replace(job, out_dir=None)
    shared = client.scatter(job, broadcast=True, hash=False)
    slots = DASK_SLOTS_PER_THREAD * max(1, sum(client.nthreads().values()))
    cutter = _Cutter(total, ChunkSizer(target_s, DASK_MAX_CHUNK, slots, chunk_size, min(MIN_RANGE_S, target_s)))
    futures: dict[Any, tuple[int, int]] = {}
    stream = as_completed([], loop=client.loop)

    def submit(start: int, stop: int) -> None:
        fut = client.submit(dask_range, shared, start, stop, pure=False)
        futures[fut] = (start, stop)
        stream.add(fut)

    def refill() -> None:
        while cutter and len(futures) < cutter.sizer.slots:
            submit(*cutter.next())

    try:
        refill()
        for fut in stream:
            start, stop = futures.pop(fut)
            try:
                result = fut.result()
                cutter.sizer.observe(result.evaluated, result.elapsed_s)
            except KilledWorker:
                if stop - start > 1:  # find the culprit: retry its points one by one
                    for raw in range(start, stop):
                        submit(raw, raw + 1)
                    continue
                result = _died(job, start, "KilledWorker: Dask workers died evaluating this point")
            except Exception as err:  # noqa: BLE001 - e.g. a pickling failure: record, go on
                result = _merge([_died(job, raw, f"{type(err).__name__}: {err}") for raw in range(start, stop)])
            refill()
            yield result
    finally:
        if futures:
            client.cancel(list(futures))


def _merge(results: list[RangeResult]) -> RangeResult:
    merged = RangeResult(results[0].start, results[-1].stop, [k for r in results for k in r.keys],
                         failed=sum(r.failed for r in results))
    merged.rows = [row for r in results for row in r.rows]
    return merged
