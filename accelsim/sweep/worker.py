"""The work of one sweep point, as it runs in a worker (or in the parent for the serial executor).

Why its own module: a worker process imports only this and the evaluator, and the executors
(:mod:`accelsim.sweep.executors`) and the driver (:mod:`accelsim.sweep.run`) share it. A point's
failure is never an exception here: it becomes the point's row, with ``status`` and ``error``.

Rows are *streamed*: in a process-pool worker every row is put on a pipe to the parent the moment
its point finishes, so an interrupt or a dead worker loses at most the points still running, not
the rest of a chunk.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from accelsim.errors import InfeasibleError
from accelsim.hardware.base import spec_from_dict
from accelsim.report import flatten
from accelsim.sweep.evaluators import get_evaluator
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.spec import Point, canonical_json, flatten_paths
from accelsim.sweep.store import ERROR, INFEASIBLE, OK, cell
from accelsim.sweep.workloads import resolve_workload

MAX_ERROR_CHARS = 2000
Chunk = list[dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """What every point of a sweep shares; shipped once per chunk."""

    evaluator: str
    metric_types: dict[str, str]
    derived: dict[str, str]
    param_paths: tuple[str, ...]
    allow_code: bool = False  # the parent's opt-in for module:function references


_started_queue: Any = None  # set in process-pool workers: chunk ids are reported here on start
_rows_queue: Any = None  # set in streaming process-pool workers: each finished row goes here


def init_worker(started: Any, rows: Any = None) -> None:
    global _started_queue, _rows_queue
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker must not inherit the CLI's handler
    _started_queue = started
    _rows_queue = rows


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
    """Evaluate points; never raises for a point's failure (that becomes its row). In a streaming
    worker the rows go to the parent one by one as they finish and the return value is empty."""
    if _started_queue is not None:
        _started_queue.put(chunk_id)
    rows = []
    for row in evaluate_each(context, tasks):
        if _rows_queue is not None:
            _rows_queue.put(row)  # synchronous: the parent has it even if this worker dies next
        else:
            rows.append(row)
    return rows


def evaluate_each(context: Context, tasks: list[dict[str, Any]]) -> Any:
    """The rows of ``tasks``, one at a time, as each point finishes."""
    evaluator = get_evaluator(context.evaluator, allow_code=context.allow_code)
    derived = {name: compile_expression(text, f"derived.{name}") for name, text in context.derived.items()}
    inputs = _SharedInputs(context.allow_code)
    for task in tasks:
        yield _evaluate_point(context, evaluator, derived, task, inputs)


class _SharedInputs:
    """Validated hardware and resolved workloads, built once per dict a chunk shares.

    Why: the points of one parameter row share one hardware dict (one per workload), and pickling a
    chunk keeps that sharing (pickle's memo), so validating by identity saves most of the pydantic
    validation, which was about 40% of a cheap point's cost. Keyed by ``id`` with the dict held, so
    an id cannot be reused while cached; specs are frozen, so sharing one between points is safe.
    """

    def __init__(self, allow_code: bool) -> None:
        self.allow_code = allow_code
        self._hardware: dict[int, tuple[dict, Any]] = {}
        self._workload: dict[int, tuple[dict, Any]] = {}

    def hardware(self, data: dict[str, Any]) -> Any:
        hit = self._hardware.get(id(data))
        if hit is None:
            hit = self._hardware[id(data)] = (data, spec_from_dict(data, source="sweep point"))
        return hit[1]

    def workload(self, data: dict[str, Any]) -> Any:
        hit = self._workload.get(id(data))
        if hit is None:
            hit = self._workload[id(data)] = (data, resolve_workload(canonical_json(data), self.allow_code))
        return hit[1]


def _evaluate_point(context: Context, evaluator: Any, derived: dict, task: dict[str, Any],
                    inputs: _SharedInputs) -> dict[str, Any]:
    row = base_row(context, task)
    try:
        hardware = inputs.hardware(task["hardware"])
        workload = inputs.workload(task["workload"])
        result = flatten(dict(evaluator.fn(hardware, workload, dict(task["options"]))))
    except InfeasibleError as err:
        fail_row(row, context, INFEASIBLE, err)
        return row
    except Exception as err:  # noqa: BLE001 - any failure of one point is that point's result
        fail_row(row, context, ERROR, err)
        return row
    return row_of_result(context, derived, task, result)


def evaluate_task(context: Context, evaluator: Any, derived: dict, point: Point, hardware: Any,
                  workload: Any) -> dict[str, Any]:
    """The row of a decoded point, its hardware already validated and its workload built (a
    worker's warm state holds both; see :mod:`accelsim.sweep.rangework`)."""
    task = task_of(point)
    try:
        result = flatten(dict(evaluator.fn(hardware, workload, dict(task["options"]))))
    except InfeasibleError as err:
        row = base_row(context, task)
        fail_row(row, context, INFEASIBLE, err)
        return row
    except Exception as err:  # noqa: BLE001 - any failure of one point is that point's result
        row = base_row(context, task)
        fail_row(row, context, ERROR, err)
        return row
    return row_of_result(context, derived, task, result)


def row_of_result(context: Context, derived: dict, task: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The row of a point whose evaluator returned ``result`` (flattened): metrics coerced to their
    column types, derived columns computed; a failure here is the point's error row. Shared with
    the parent's metric probe, which so never evaluates a point twice."""
    row = base_row(context, task)
    try:
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
        fail_row(row, context, INFEASIBLE, err)
    except Exception as err:  # noqa: BLE001 - any failure of one point is that point's result
        fail_row(row, context, ERROR, err)
    return row


def base_row(context: Context, task: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point": task["index"], "key": task["key"], "status": OK, "error": None,
                           "workload": task["workload"]["label"], "evaluator": context.evaluator}
    row.update(task["params"])
    return row


def fail_row(row: dict[str, Any], context: Context, status: str, err: BaseException | str) -> None:
    row["status"] = status
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    row["error"] = text[:MAX_ERROR_CHARS]
    for name in (*context.metric_types, *context.derived):
        row[name] = None


def _coerce(value: Any, kind: str, name: str) -> Any:
    """A metric as its column type; a value the column cannot hold fails the point (its error
    row says why) instead of failing the part file with every other row in it."""
    return cell(value, kind, f"metric {name}")


def task_of(point: Point) -> dict[str, Any]:
    return {"index": point.index, "key": point.key, "params": point.params, "hardware": point.hardware,
            "workload": point.workload, "options": point.options}



def died_rows(context: Context, chunk: Chunk, why: str) -> list[dict[str, Any]]:
    rows = []
    for task in chunk:
        row = base_row(context, task)
        fail_row(row, context, ERROR, why)
        rows.append(row)
    return rows

