"""Attention on a spatial accelerator (2D + 1D PE arrays, global buffer, DRAM), tile by tile.

The engine replays a Mapping of a softmax-cascade Graph (``workloads/attention.py``: 1-pass for
FuseMax and its ablations, 3-pass for FLAT and the unfused baseline): ``simulate(graph, hw,
mapping)`` and ``report(graph, hw, mapping)``. What it knows of the cascade it reads off the
Graph (``cascade``); the Mapping is decoded into an internal view (``plan``); per-tile costs,
traffic and buffer footprints are in ``costs``, the tile stream in ``stream``, the layer
simulation in ``simulate`` and energy and the Report in ``report``.

Not registered for the ``spatial`` kind: the whole-model engine in ``engines/accelerator``
owns that (any model's Einsums on the arrays). This one is the attention-layer reproduction of
the FuseMax artifact, whose schedule (lock-step stages, deferral, K/V passes) is its own.
"""
from accelsim.engines.spatial.cascade import (
    Cascade,
    CascadeEinsum,
    attention_shape,
    cascade_of,
)
from accelsim.engines.spatial.costs import (
    einsum_cycles,
    einsum_elements,
    exp_diff_cycles,
    flat_row_bytes,
    flat_spill_fraction,
    one_pass_buffer_bytes,
    one_pass_stream_buffer_bytes,
    softmax_cycles_per_element,
    softmax_ops,
    stage_cycles,
    staged_tile_tensors,
    three_pass_min_buffer_bytes,
    traffic_bytes,
    useful_elements,
)
from accelsim.engines.spatial.plan import AttentionPlan, check_schedule, decode, encode
from accelsim.engines.spatial.report import energy_pj, plan_report, report, simulate
from accelsim.engines.spatial.simulate import (
    FULL_SIM_MAX_TILES,
    SimResult,
    simulate_plan,
)
from accelsim.engines.spatial.stream import (
    extrapolated_latency,
    one_pass_stream,
    one_pass_stream_reference,
)

__all__ = [
    "AttentionPlan",
    "Cascade",
    "CascadeEinsum",
    "FULL_SIM_MAX_TILES",
    "SimResult",
    "attention_shape",
    "cascade_of",
    "check_schedule",
    "decode",
    "einsum_cycles",
    "einsum_elements",
    "encode",
    "energy_pj",
    "exp_diff_cycles",
    "extrapolated_latency",
    "flat_row_bytes",
    "flat_spill_fraction",
    "one_pass_buffer_bytes",
    "one_pass_stream",
    "one_pass_stream_buffer_bytes",
    "one_pass_stream_reference",
    "plan_report",
    "report",
    "simulate",
    "simulate_plan",
    "softmax_cycles_per_element",
    "softmax_ops",
    "stage_cycles",
    "staged_tile_tensors",
    "three_pass_min_buffer_bytes",
    "traffic_bytes",
    "useful_elements",
]
