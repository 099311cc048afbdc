"""``cosma_map``: the COSMA mapper's entry point, one ILP or divide and conquer.

Why a module of its own: divide and conquer (``mappers.divide``) builds on the single-ILP solver
in ``mappers.cosma``; the entry point that chooses between them imports both, so neither imports
the other back.
"""
from __future__ import annotations

from accelsim.ir import Graph
from mappers import baselines, cosma, divide
from mappers.cosma import CosmaResult
from mappers.memory_problem import MemoryProblem


def cosma_map(graph: Graph, capacity_bytes: int, *, with_weights: bool = False, divide_ops: int = 0,
              min_peak_order: list[int] | None = None, **options) -> tuple[CosmaResult, list]:
    """``map(graph, capacity)``: COSMA (one ILP, or divide and conquer with ``divide_ops`` per piece)
    warm-started from the best baseline; returns the result and all baselines (the CLI shows them)."""
    problem = MemoryProblem.from_graph(graph, with_weights)
    problem.require_capacity(capacity_bytes)
    # module attributes looked up at call time, so a patched solver (tests) is the one that runs
    base = baselines.run_baselines(problem, capacity_bytes, min_peak_order)
    best = min(base, key=lambda r: r.non_compulsory_bytes)
    if divide_ops:
        return divide.divide_and_conquer(problem, capacity_bytes, piece_ops=divide_ops, warm_start=best.plan,
                                         **options), base
    return cosma.solve_cosma(problem, capacity_bytes, warm_start=best.plan, **options), base
