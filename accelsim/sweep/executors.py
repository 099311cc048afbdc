"""Executors: how a sweep's points get evaluated (in-process, a local process pool, a Dask
cluster). Each is a generator of row batches that the driver (:mod:`accelsim.sweep.run`) writes.

Both parallel executors keep two chunks in flight per worker and size each from the measured cost
of a point (:class:`~accelsim.sweep.chunking.ChunkSizer`): cheap points travel in batches, costly
ones one or a few at a time, and the tail is spread over every worker.

Loss on interrupt: serial and process executors hand back every row as its point finishes (the
pool's workers stream rows through a pipe read by a thread in the parent), so Ctrl-C or SIGTERM
loses at most the points that are still running, one per worker. Rows that arrive while the
generator is being closed go to the caller's ``spill`` list, which the driver writes too. Dask
returns a chunk's rows when the chunk completes; its chunks are sized as the sweep runs to take
about :data:`DASK_CHUNK_S` each (at most :data:`DASK_MAX_CHUNK` points), so an interrupt loses
about that much work per worker thread.
"""
from __future__ import annotations

import multiprocessing
import pickle
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.sweep.chunking import ChunkSizer
from accelsim.sweep.worker import (
    Chunk,
    Context,
    died_rows,
    evaluate_chunk,
    evaluate_each,
    init_worker,
)

# Dask returns a chunk's rows only when it completes, so its chunks are bounded in time: what an
# interrupt may lose per thread. The cap was 64 points, which left cheap points (0.6 ms) in 40 ms
# tasks, short enough for Dask's per-task cost to show; 1 s of work is the bound now.
DASK_MAX_CHUNK = 4096
DASK_CHUNK_S = 1.0
# Pool workers stream rows point by point, so chunk size does not change what an interrupt loses;
# 0.25 s of work keeps per-task pickling/IPC negligible while the tail still spreads evenly.
POOL_MAX_CHUNK = 4096
POOL_CHUNK_S = 0.25
_POLL_S = 0.1  # how often the parent looks for streamed rows while no chunk completes


def serial_rows(context: Context, chunks: list[Chunk]) -> Iterator[list[dict[str, Any]]]:
    for chunk in chunks:
        for row in evaluate_each(context, chunk):
            yield [row]


class _RowReader:
    """Reads the rows workers put on a SimpleQueue, in a thread, so a worker never blocks on a full
    pipe while the parent waits, and the parent can collect them at any moment."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.rows: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accelsim-sweep-rows", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        reader = self.pipe._reader
        while True:
            try:
                if reader.poll(0.05):
                    self.rows.put(self.pipe.get())
                elif self._stop.is_set():
                    return
            except (EOFError, OSError, pickle.UnpicklingError):  # a writer killed mid-message
                return

    def take(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.rows.get_nowait())
            except queue.Empty:
                return out

    def close(self, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        """Stop once the pipe is empty (call after the writers ended); the rows not yet taken."""
        self._stop.set()
        self._thread.join(timeout_s)
        return self.take()


def process_rows(context: Context, chunks: list[Chunk], workers: int, spill: list[dict[str, Any]],
                 chunk_size: int | None = None, target_s: float = POOL_CHUNK_S) -> Iterator[list[dict[str, Any]]]:
    """A local process pool fed chunks sized from the measured cost of a point
    (:class:`~accelsim.sweep.chunking.ChunkSizer`; ``chunk_size`` fixes the size), two in flight
    per worker. A pool broken by a dying worker is rebuilt for the points not yet started; the
    points of the chunks that were running and had not reported a row are then run one at a time,
    each in a fresh single-worker pool, so only the culprit is blamed."""
    mp = multiprocessing.get_context("fork")
    pending = deque(task for chunk in chunks for task in chunk)
    sizer = ChunkSizer(target_s, POOL_MAX_CHUNK, 2 * workers, chunk_size)
    suspects: list[Chunk] = []
    while pending:
        started = mp.SimpleQueue()  # written synchronously: a worker killed right after still told us
        reader = _RowReader(mp.SimpleQueue())
        pool = ProcessPoolExecutor(workers, mp_context=mp, initializer=init_worker,
                                   initargs=(started, reader.pipe))
        issued: dict[int, Chunk] = {}
        futures: dict[Any, int] = {}
        finished: set[int] = set()
        received: set[str] = set()
        broken = False

        try:
            _refill(pool, context, pending, sizer, issued, futures)
            while futures:
                done, _ = wait(list(futures), timeout=_POLL_S, return_when=FIRST_COMPLETED)
                rows = reader.take()
                if rows:
                    received.update(r["key"] for r in rows)
                    yield rows
                for fut in done:
                    _, elapsed_s = fut.result()  # BrokenProcessPool if any worker died
                    i = futures.pop(fut)
                    finished.add(i)
                    sizer.observe(len(issued[i]), elapsed_s)
                _refill(pool, context, pending, sizer, issued, futures)
        except BrokenProcessPool:
            broken = True
        finally:
            _stop(pool)
            spill.extend(reader.close())  # only non-empty if we are being closed early
        rows, spill[:] = list(spill), []
        received.update(r["key"] for r in rows)
        if rows:
            yield rows
        if not broken:
            break
        began = _drain(started)
        for i in began - finished:
            suspects.extend([task] for task in issued[i] if task["key"] not in received)
        unstarted = [task for i in sorted(set(issued) - finished - began) for task in issued[i]]
        pending.extendleft(reversed(unstarted))
    yield from _one_by_one(context, suspects, mp)


def _refill(pool: ProcessPoolExecutor, context: Context, pending: deque, sizer: ChunkSizer,
            issued: dict[int, Chunk], futures: dict[Any, int]) -> None:
    """Keep ``sizer.slots`` chunks in flight; a chunk's id is its index in ``issued``."""
    while pending and len(futures) < sizer.slots:
        chunk = [pending.popleft() for _ in range(sizer.next_size(len(pending)))]
        chunk_id = len(issued)
        issued[chunk_id] = chunk
        futures[pool.submit(_timed_chunk, context, chunk, chunk_id)] = chunk_id


def _one_by_one(context: Context, suspects: list[Chunk], mp: Any) -> Iterator[list[dict[str, Any]]]:
    pool = None
    try:
        for chunk in suspects:
            if pool is None:
                pool = ProcessPoolExecutor(1, mp_context=mp, initializer=init_worker, initargs=(None,))
            try:
                yield pool.submit(evaluate_chunk, context, chunk).result()
            except BrokenProcessPool:
                _stop(pool)
                pool = None
                yield died_rows(context, chunk, "WorkerDied: the worker process evaluating this point died")
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


def _timed_chunk(context: Context, tasks: Chunk, chunk_id: int = -1) -> tuple[list[dict[str, Any]], float]:
    """A chunk's rows and the worker time it took, which sizes the next chunks."""
    start = time.perf_counter()
    rows = evaluate_chunk(context, tasks, chunk_id)
    return rows, time.perf_counter() - start


def dask_rows(context: Context, chunks: list[Chunk], client: Any, target_s: float = DASK_CHUNK_S,
              chunk_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Chunks sized on the fly so each takes about ``target_s`` of worker time (the first ones are
    single points, to measure), at most :data:`DASK_MAX_CHUNK` points, with two chunks in flight
    per worker thread: an interrupt loses about ``target_s`` of work per thread, whatever the
    points cost. A chunk whose worker died is retried point by point to find the culprit."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    pending = deque(task for chunk in chunks for task in chunk)
    sizer = ChunkSizer(target_s, DASK_MAX_CHUNK, 2 * max(1, sum(client.nthreads().values())), chunk_size)
    futures: dict[Any, Chunk] = {}
    stream = as_completed([], loop=client.loop)

    def submit(chunk: Chunk) -> None:
        fut = client.submit(_timed_chunk, context, chunk, pure=False)
        futures[fut] = chunk
        stream.add(fut)

    def refill() -> None:
        while pending and len(futures) < sizer.slots:
            submit([pending.popleft() for _ in range(sizer.next_size(len(pending)))])

    try:
        refill()
        for fut in stream:
            chunk = futures.pop(fut)
            try:
                rows, elapsed_s = fut.result()
                sizer.observe(len(chunk), elapsed_s)
            except KilledWorker:
                if len(chunk) > 1:  # find the culprit: retry its points one by one
                    for task in chunk:
                        submit([task])
                    continue
                rows = died_rows(context, chunk, "KilledWorker: Dask workers died evaluating this point")
            except Exception as err:  # noqa: BLE001 - e.g. a pickling failure: record, go on
                rows = died_rows(context, chunk, f"{type(err).__name__}: {err}")
            refill()
            yield rows
    finally:
        if futures:
            client.cancel(list(futures))
