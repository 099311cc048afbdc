"""Kept importable: the spatial attention engine is the package ``accelsim.engines.spatial``."""
from accelsim.engines.spatial import *  # noqa: F401,F403
from accelsim.engines.spatial import (  # noqa: F401
    AttentionPlan,
    check_schedule,
    energy_pj,
    report,
    simulate,
    simulate_plan,
)
