"""Tiling mapper: loop nests for GEMMs and convolutions on multi-level memories.

``search`` (branch and bound, ``search.py``) chooses per storage level the tile of every rank,
the loop order and the spatial unrolling; ``accelsim.engines.loopnest`` costs the result.
``map_graph`` maps every two-input MAC Einsum of a Graph and returns a ``Mapping`` whose
``tiling`` section holds one loop nest per Einsum (``LoopNest.to_dict``). ``systolic.py`` is the
systolic kind's default mapper (entry point ``accelsim.default_mappers: systolic``): a closed-form
exhaustive search per GEMM with the array's fill and drain, never worse than SCALE-Sim's fold order.
``spatial.py`` is the spatial kind's (entry point ``accelsim.default_mappers: spatial``): the global
buffer tile (shared by all operands, double buffered) and DRAM loop order of each GEMM on the
output-stationary 2D array, also a closed-form exhaustive search.
"""
from __future__ import annotations

from accelsim.hardware.base import HardwareSpec
from accelsim.ir import Graph, OpKind
from accelsim.mapping import Mapping
from accelsim.tiling import LoopProblem
from mappers.tiling.hardware import dtype_bytes_for, hierarchy_for  # noqa: F401
from mappers.tiling.pad import candidates
from mappers.tiling.search import OBJECTIVES, SearchResult, objective_key, search  # noqa: F401


def map_problem(problem: LoopProblem, hardware: HardwareSpec, objective: str = "latency",
                time_limit_s: float = 10.0, pad: bool = True, tie_break: bool = True) -> SearchResult:
    """The best nest of ``problem`` on ``hardware``; with ``pad``, also of its padded versions
    (``pad.py``), sharing the time limit, keeping the one best on the objective."""
    hierarchy = hierarchy_for(hardware, problem)
    shapes = candidates(problem) if pad else [dict(problem.extents)]
    best = None
    for ext in shapes:
        p = problem if ext == problem.extents else problem.padded(ext)
        r = search(p, hierarchy, objective, time_limit_s / len(shapes), tie_break)
        key = objective_key(objective, r.cost.dram_bytes, r.cost.latency_cycles, r.cost.energy_pj)
        if best is None or key < best[0]:
            best = (key, r)
    return best[1]


def result_meta(r: SearchResult) -> dict:
    return {"status": r.status, "gap": r.gap, "bound": r.bound, "solve_s": r.solve_s, "nodes": r.nodes,
            "objective": r.objective, "value": r.value}


def map_graph(graph: Graph, hardware: HardwareSpec, objective: str = "latency", time_limit_s: float = 10.0
              ) -> Mapping:
    """A loop nest for every two-input MAC Einsum of ``graph`` (the others stay unmapped)."""
    tiling, meta = {}, {}
    for e in graph.einsums:
        if e.op is OpKind.MAC and len(e.inputs) == 2:
            r = map_problem(LoopProblem.from_einsum(e), hardware, objective, time_limit_s)
            tiling[e.name] = r.nest.to_dict()
            meta[e.name] = result_meta(r)
    return Mapping(graph=graph.name, hardware=hardware.name, tiling=tiling,
                   meta={"mapper": "tiling", "objective": objective, "einsums": meta})
