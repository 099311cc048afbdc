"""COSMA plans on hardware: cycles from the whole-model engine's units, overlap from the event engine."""
from __future__ import annotations

import pytest

from accelsim.engines.accelerator.chips import chip_for
from accelsim.engines.accelerator.lowering import Placement, lower
from accelsim.engines.scratchpad import replay
from accelsim.hardware import load_hardware
from mappers.cosma import solve_cosma
from mappers.memory_problem import MemoryProblem
from tests.cosma_graphs import tiny_graph


@pytest.mark.parametrize("capacity", [200, 210])
def test_plan_cycles_are_bounded_by_their_parts(capacity):
    g = tiny_graph()
    hw = load_hardware("scalesim-scale")
    result = solve_cosma(MemoryProblem.from_graph(g), capacity, mode="fixed", time_limit_s=20)
    r = replay(g, result.mapping, capacity, hardware=hw)
    assert max(r.compute_cycles, r.dma_cycles) <= r.total_cycles * (1 + 1e-12)
    assert r.total_cycles <= (r.compute_cycles + r.dma_cycles) * (1 + 1e-12)  # overlap never adds time
    bpc = hw.dram_bytes_per_cycle
    moved = sum(ev.bytes for ev in result.mapping.events)
    assert r.dma_cycles == pytest.approx(moved / bpc)  # every planned transfer, at the DRAM bandwidth
    chip = chip_for(hw)
    place = Placement(g, chip)
    for row in r.per_step:  # each operator costs what the whole-model engine says on its unit
        work = lower(g.einsum(row["einsum"]), chip, place)
        if work.unit != "dma":
            assert row["compute_cycles"] == work.unit_cycles
