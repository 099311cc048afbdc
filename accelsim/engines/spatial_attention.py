"""Kept importable: the spatial attention engine is the package ``accelsim.engines.spatial``
(``simulate(graph, hw, mapping)`` and ``report(graph, hw, mapping)`` replay a Mapping of a
cascade Graph; ``simulate_plan`` runs the engine's internal view directly)."""
from accelsim.engines.spatial import *  # noqa: F403
from accelsim.engines.spatial import __all__  # noqa: F401
