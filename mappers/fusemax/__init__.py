"""Attention mappings for spatial accelerators: the published designs and an optimizer.

Every mapping is emitted as an ``accelsim.mapping.Mapping`` over a cascade Graph of
``workloads/attention.py`` (``mapped_graph(shape, mapping)`` rebuilds that Graph); the engine
(``accelsim.engines.spatial``) decodes and replays it. Internally the search works on the
engine's view of a mapping (``AttentionPlan``) so that it costs exactly what the engine costs.

Published plans (what the FuseMax artifact evaluates: fusemax, arch, cascade, flat, unfused) are
described where they are built, ``mappers/fusemax/published.py``.

``optimize`` is the optimizer: a CP-SAT model choosing the binding of every 1-pass Einsum, its
stage in the per-tile schedule (and whether a state update is deferred into the next tile),
and the number of query tiles per K/V pass, for each candidate query/key tile size, minimizing
latency, energy or DRAM traffic under the buffer capacity (with room to prefetch). It is exact
for its steady-state model; the near-optimal plans and the published one are then simulated
and the fastest simulated is returned. ``exhaustive`` enumerates the same
space by branch and bound for tests on small instances. ``size_hardware`` picks the PE-array
dimension under an area or buffer budget.
"""
from __future__ import annotations

from mappers.fusemax.exhaustive import exhaustive
from mappers.fusemax.model import model_energy_pj, model_latency_cycles
from mappers.fusemax.optimize import NEAR_TIE, OptimizeResult, optimize
from mappers.fusemax.published import (
    DESIGN_HARDWARE,
    DESIGNS,
    flat_candidates,
    flat_plan,

    one_pass_table,
    plan_graph,
    plan_mapping,
    published_mapping,
    published_p1,
    published_plan,
    three_pass_table,
)
from mappers.fusemax.sizing import size_hardware
from workloads.attention import mapped_graph  # noqa: F401  (rebuilds the Graph a Mapping names)

__all__ = [
    "DESIGNS",
    "DESIGN_HARDWARE",
    "NEAR_TIE",
    "OptimizeResult",
    "exhaustive",
    "flat_candidates",
    "flat_plan",
    "mapped_graph",
    "model_energy_pj",
    "model_latency_cycles",
    "one_pass_table",
    "optimize",
    "plan_graph",
    "plan_mapping",
    "published_mapping",
    "published_p1",
    "published_plan",
    "size_hardware",
    "three_pass_table",
]
