"""Hardware sizing: the PE-array dimension under an area or buffer budget, by simulation."""
from __future__ import annotations

import math

from accelsim.engines.spatial import simulate_plan
from accelsim.errors import InfeasibleError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir.views import AttentionShape
from mappers.fusemax.published import published_plan


def size_hardware(hw: SpatialAccelerator, s: AttentionShape, *, area_budget_um2: float | None = None,
                  buffer_budget_bytes: int | None = None, pe_dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512),
                  design: str = "fusemax") -> list[dict]:
    """For each PE-array dimension, the design's simulated latency on a resized ``hw`` (buffer
    from the budget if given) and whether it fits the area budget; the first row is the fastest
    that fits."""
    rows = []
    for pe in pe_dims:
        cand = hw.resized(pe, buffer_budget_bytes)
        area = cand.area_um2()["total"]
        fits = area_budget_um2 is None or area <= area_budget_um2
        try:
            plan = published_plan(design, cand, s)
            lat = simulate_plan(plan, cand, s).latency_cycles
        except InfeasibleError:
            lat, plan = math.inf, None
        rows.append({"pe_dim": pe, "area_um2": area, "fits_budget": fits, "latency_cycles": lat,
                     "latency_s": lat / cand.clock_hz, "p1": plan.p1 if plan else None})
    fitting = [r for r in rows if r["fits_budget"] and math.isfinite(r["latency_cycles"])]
    if not fitting:
        raise InfeasibleError(f"no PE dimension in {pe_dims} fits the area budget {area_budget_um2} um^2",
                              field="area_budget_um2")
    best = min(fitting, key=lambda r: (r["latency_cycles"], r["area_um2"]))
    return [best] + [r for r in rows if r is not best]

