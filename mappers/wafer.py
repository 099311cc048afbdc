"""The wafer-scale mapper: the core grid and layer regions for a model, chosen by search.

The search and its cost model live with the mesh engine (``accelsim.engines.mesh.placement``),
because the engine places a model itself when it is given no mapping; this module is the mapper's
entry point to the same search and the plan it returns. ``layer_plan`` is the other, explicitly
labelled measurement convention (one layer per compile, as WaferLLM measures; see
``accelsim.engines.mesh.layer_at_a_time``); ``plan`` keeps the whole model resident.
"""
from __future__ import annotations

from accelsim.engines.mesh.layer_at_a_time import (  # noqa: F401 (WaferLLM's one-layer-per-compile convention)
    RESIDENT_CONVENTION,
    convention_text,
    layer_plan,
)
from accelsim.engines.mesh.placement import (  # noqa: F401 (the mapper's API)
    Placement,
    PartSpec,
    WaferPlan,
    best_effort_shortfall,
    candidate_grids,
    cost_at,
    fitting_placement,
    handoff_cycles,
    max_regions,
    parts_of,
    placement,
    plan,
    tokens_of,
)
