"""A costly sweep evaluator for the throughput benchmark: one COSMA solve per point.

Used as ``benchmarks.sweep_costly:cosma`` (a ``module:function`` evaluator, so the sweep needs
``allow_code=True``). The point's workload is the graph to schedule; its scratchpad capacity is
the option ``capacity_x`` times the largest tensor of the graph. The solve runs CP-SAT on one
thread with a fixed seed, so a point's cost is its own core's and the result does not depend on
which worker ran it (the runs used here end ``optimal``; a time-limited run would not be
reproducible, so its row says so in ``solver_status``).
"""
from __future__ import annotations

from typing import Any


def cosma(hardware: Any, workload: Any, options: dict[str, Any]) -> dict[str, Any]:
    from mappers.cosma_entry import cosma_map
    from mappers.memory_problem import MemoryProblem

    problem = MemoryProblem.from_graph(workload, False)
    capacity = int(float(options.get("capacity_x", 2.0)) * max(problem.tensor_bytes))
    result, _ = cosma_map(workload, capacity, solver="cpsat", time_limit_s=float(options.get("time_limit_s", 30.0)),
                          threads=1, seed=0)
    return {"capacity_bytes": capacity, "non_compulsory_bytes": int(result.non_compulsory_bytes),
            "solver_status": str(getattr(result, "status", ""))}


def block(model: str = "gpt2", seq: int = 128) -> Any:
    """One prefill block of a zoo transformer, as a Graph (what COSMA schedules)."""
    from workloads.models import load_model
    from workloads.transformer import build_block

    return build_block(load_model(model), "prefill", seq=seq)
