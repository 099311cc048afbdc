"""The work of one sweep point, as it runs in a worker (or in the parent for the serial executor).

Why its own module: a worker process imports only this and the evaluator, and the executors
(:mod:`accelsim.sweep.executors`) and the driver (:mod:`accelsim.sweep.run`) share it. A point's
failure is never an exception here: it becomes the point's row, with ``status`` and ``error``.

Where the rows go, and how a worker gets its points, is :mod:`accelsim.sweep.rangework`.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from accelsim.errors import InfeasibleError
from accelsim.report import flatten
from accelsim.sweep.spec import Point, flatten_paths
from accelsim.sweep.store import ERROR, INFEASIBLE, OK, cell

MAX_ERROR_CHARS = 2000
Chunk = list[dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """What every point of a sweep shares; part of the job each worker gets once."""

    evaluator: str
    metric_types: dict[str, str]
    derived: dict[str, str]
    param_paths: tuple[str, ...]
    allow_code: bool = False  # the parent's opt-in for module:function references


def init_worker() -> None:
    """In a pool worker: only the sweep process decides what an interrupt means, a forked worker
    must not inherit the CLI's SIGTERM handler, and the worker dies with the sweep process."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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


