"""The multicore kind's achievable fractions (compute_efficiency, memory_efficiency).

Independent checks: with a fixed loop nest the traffic does not depend on rates, so the time at
any pair of fractions follows in closed form from the cycle counts at the datasheet peaks
(compute cycles over ``compute_efficiency``, DRAM cycles over ``memory_efficiency``, on-chip ports
unchanged); at 1.0 that is the datasheet model exactly. A compute-bound nest's time scales as
1/efficiency; re-mapped, the time lies between the ideal at the slower rate and the old nest's.
The a100-cores values must be what benchmarks/a100_calibration.py derives from the development
sample, so they cannot be retuned on the check rows without this failing.
"""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from accelsim.engines.loopnest import evaluate
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware, spec_from_dict
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from accelsim.mapping import Mapping
from accelsim.simulate import simulate
from accelsim.tiling import LoopNest, LoopProblem
from mappers.tiling import map_graph
from tests.test_multicore_engine import TINY, two_einsums


def tiny_at(compute: float, memory: float):
    return spec_from_dict({**TINY, "compute_efficiency": compute, "memory_efficiency": memory})


def gelu(elements: int) -> Graph:
    x = Tensor("x", ("i",), (elements,), 2, TensorRole.INPUT)
    y = Tensor("y", ("i",), (elements,), 2, TensorRole.OUTPUT)
    return Graph("gelu", [Einsum("gelu", Operand(y, ("i",)), (Operand(x, ("i",)),), {"i": elements},
                                 OpKind.ACTIVATION)])


@pytest.fixture(scope="module")
def fixed_mapping() -> Mapping:
    return map_graph(two_einsums(), tiny_at(1.0, 1.0), "latency", 10)


@pytest.mark.parametrize("compute, memory", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.25), (0.8, 0.6)])
def test_gemm_time_follows_the_cycle_counts_at_peak(fixed_mapping, compute, memory):
    g = two_einsums()
    nest = LoopNest.from_dict("mm", fixed_mapping.tiling["mm"])
    at_peak = evaluate(nest, LoopProblem.from_einsum(g.einsum("mm")), tiny_at(1.0, 1.0).hierarchy())
    dram = at_peak.dram_level
    scaled = [at_peak.compute_cycles / compute,
              *(c / memory if lv == dram else c for lv, c in at_peak.level_cycles.items())]
    expected_s = max(scaled) / 1e9 + 1e-6  # TINY: 1 GHz, 1 us launch
    report = simulate(g, tiny_at(compute, memory), fixed_mapping)
    row = report.layers[0]
    if (compute, memory) == (1.0, 1.0):
        assert row["total_s"] == at_peak.latency_cycles / 1e9 + 1e-6  # the datasheet model, bit for bit
    assert row["total_s"] == pytest.approx(expected_s, rel=1e-12)
    assert row["dram_bytes"] == at_peak.dram_bytes  # rates change time, never traffic
    base = simulate(g, tiny_at(1.0, 1.0), fixed_mapping)
    assert report.core.energy_pj_by_component == base.core.energy_pj_by_component
    assert report.core.macs == base.core.macs


def test_vector_operator_uses_the_achievable_rates():
    n = 1 << 16
    nbytes = 2 * n * 2  # read once, write once, fp16
    for compute, memory in ((1.0, 1.0), (0.5, 0.4)):
        row = simulate(gelu(n), tiny_at(compute, memory)).layers[0]
        # TINY: DRAM 8 B/cycle at 1 GHz, vector 4 cores x 8 FLOP/cycle
        flops = row["flops"]
        assert row["total_s"] == pytest.approx(max(nbytes / (8e9 * memory), flops / (32e9 * compute)) + 1e-6,
                                               rel=1e-12)


def a100_at(**fractions: float):
    a100 = load_hardware("a100-cores")
    return type(a100).model_validate({**a100.model_dump(), "compute_efficiency": 1.0, "memory_efficiency": 1.0,
                                      **fractions})


@pytest.fixture(scope="module")
def a100_gemm_mapping() -> Mapping:
    return map_graph(two_einsums(2048, 2048, 2048), a100_at(), "latency", 5)


@pytest.mark.parametrize("compute", [0.5, 0.9])
def test_a_compute_bound_gemm_scales_as_one_over_the_efficiency(a100_gemm_mapping, compute):
    peak, slow = a100_at(), a100_at(compute_efficiency=compute)
    a100 = peak
    g = two_einsums(2048, 2048, 2048)
    launch = a100.launch_overhead_s
    mapping = a100_gemm_mapping
    base = simulate(g, peak, mapping).layers[0]
    assert base["bound"] == "compute"
    fixed = simulate(g, slow, mapping).layers[0]  # the same nest: exactly 1/efficiency
    assert fixed["total_s"] - launch == pytest.approx((base["total_s"] - launch) / compute, rel=1e-12)
    assert fixed["utilization_array"] == pytest.approx(base["utilization_array"] * base["total_s"] / fixed["total_s"])
    # Re-mapped, the mapper may trade array steps for traffic (a nest that was memory-bound at the peak
    # can win once the arrays are slower): never worse than the old nest, never better than the ideal.
    remapped = simulate(g, slow, time_limit_s=5).layers[0]
    ideal_s = 2048 ** 3 / a100.peak_macs_per_cycle / (a100.clock_hz * compute)
    assert ideal_s <= remapped["total_s"] - launch <= fixed["total_s"] - launch


@pytest.mark.parametrize("value", [0.0, 1.5, -0.2, True])
def test_an_efficiency_outside_0_1_is_refused(value):
    for name in ("compute_efficiency", "memory_efficiency"):
        with pytest.raises((AccelsimError, ValidationError)):
            spec_from_dict({**TINY, name: value})


def test_each_efficiency_changes_the_result_it_should():
    gemm, act = two_einsums(2048, 2048, 2048), gelu(1 << 24)
    peak = a100_at()
    base_mm = simulate(gemm, peak, time_limit_s=5).core.total_s
    base_act = simulate(act, peak).core.total_s
    for name, value in (("compute_efficiency", 0.5), ("memory_efficiency", 0.5)):
        spec = a100_at(**{name: value})
        changed_mm = simulate(gemm, spec, time_limit_s=5).core.total_s != base_mm
        changed_act = simulate(act, spec).core.total_s != base_act
        # at the peaks the GEMM is compute-bound and the GELU memory-bound (far from the vector rate)
        if name == "compute_efficiency":
            assert changed_mm and not changed_act
        else:
            assert changed_act


def test_a100_cores_fractions_are_the_development_derivation():
    from accelsim.reference_data import reference_dir

    if reference_dir("a100") is None:
        pytest.skip("the A100 development sample is not on this machine")
    from benchmarks.a100_calibration import derive

    derived = derive(time_limit_s=5)
    a100 = load_hardware("a100-cores")
    for name in ("compute_efficiency", "memory_efficiency"):
        assert getattr(a100, name) == pytest.approx(derived[name]["value"], abs=5e-4)  # three decimals
    assert set(derived["compute_efficiency"]["bounds"]) == {"compute"}
    assert set(derived["memory_efficiency"]["bounds"]) == {"memory"}
