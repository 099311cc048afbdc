"""The multicore engine: Graphs and models through the tiling mapper and the loop-nest cost."""
from __future__ import annotations

import pytest

from accelsim.engines.loopnest import evaluate
from accelsim.engines.registry import engine_for
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware, spec_from_dict
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from accelsim.simulate import simulate
from accelsim.tiling import LoopProblem
from mappers.tiling import map_graph

TINY = {
    "kind": "multicore", "name": "tiny", "clock_hz": 1e9, "cores": 4,
    "core": {"arrays": 1, "array": {"rows": 4, "cols": 4}, "vector_flops_per_cycle": 8,
             "levels": [{"name": "regs", "capacity_bytes": 1024},
                        {"name": "smem", "capacity_bytes": 4096, "bandwidth_bytes_per_cycle": 16,
                         "double_buffered": True, "read_energy_pj_per_byte": 1, "write_energy_pj_per_byte": 1}]},
    "shared_levels": [{"name": "l2", "capacity_bytes": 65536, "bandwidth_bytes_per_cycle": 64,
                       "read_energy_pj_per_byte": 4, "write_energy_pj_per_byte": 4}],
    "dram": {"name": "dram", "bandwidth_bytes_per_cycle": 8, "read_energy_pj_per_byte": 20,
             "write_energy_pj_per_byte": 20},
    "mac_energy_pj": 0.5, "launch_overhead_s": 1e-6,
}


def two_einsums(m: int = 32, k: int = 64, n: int = 48) -> Graph:
    x = Tensor("X", ("m", "k"), (m, k), 2, TensorRole.INPUT)
    w = Tensor("W", ("k", "n"), (k, n), 2, TensorRole.WEIGHT)
    y = Tensor("Y", ("m", "n"), (m, n), 2)
    z = Tensor("Z", ("m", "n"), (m, n), 2, TensorRole.OUTPUT)
    return Graph("two", [
        Einsum("mm", Operand(y, ("m", "n")), (Operand(x, ("m", "k")), Operand(w, ("k", "n"))), {"m": m, "k": k, "n": n}),
        Einsum("act", Operand(z, ("m", "n")), (Operand(y, ("m", "n")),), {"m": m, "n": n}, OpKind.ACTIVATION)])


@pytest.fixture(scope="module")
def tiny():
    return spec_from_dict(TINY)


def test_report_core_is_filled_and_sound(tiny):
    g = two_einsums()
    r = simulate(g, tiny)
    core = r.core
    assert core.total_s > 0 and core.macs == 32 * 64 * 48
    compulsory = sum(t.bytes for t in g.tensors.values()) + g.tensors["Y"].bytes  # Y written, then read again
    assert sum(core.offchip_bytes_by_role.values()) >= compulsory
    assert core.read_bytes["dram"] + core.write_bytes["dram"] == sum(core.offchip_bytes_by_role.values())
    assert all(0 <= u <= 1 for u in core.utilization.values())
    assert [row["unit"] for row in r.layers] == ["array", "vector"]
    # each operator pays one launch; the GEMM is at least its compute at full use of the 64 MACs
    assert r.layers[0]["total_s"] >= 32 * 64 * 48 / 64 / 1e9 + 1e-6


def test_a_given_mapping_is_replayed(tiny):
    g = two_einsums()
    mapping = map_graph(g, tiny, "dram", 10)
    assert mapping.meta["einsums"]["mm"]["status"] == "optimal"
    replayed = simulate(g, tiny, mapping)
    searched_dram = mapping.meta["einsums"]["mm"]["value"]
    assert replayed.layers[0]["dram_bytes"] == searched_dram
    assert replayed.layers[0]["mapper_status"] == "given"


def test_a_bad_mapping_is_a_problem_not_an_exception(tiny):
    g = two_einsums()
    mapping = map_graph(g, tiny, "latency", 10)
    levels = mapping.tiling["mm"]["levels"]
    levels[0]["temporal"] = [["q", 2]]
    problems = engine_for("multicore").check(g, tiny, mapping)
    assert problems and "unknown rank 'q'" in problems[0].detail
    with pytest.raises(AccelsimError, match="unknown rank 'q'"):
        simulate(g, tiny, mapping)


def test_an_allreduce_cannot_run(tiny):
    x = Tensor("x", ("i",), (64,), 2, TensorRole.INPUT)
    y = Tensor("y", ("i",), (64,), 2, TensorRole.OUTPUT)
    g = Graph("ar", [Einsum("ar", Operand(y, ("i",)), (Operand(x, ("i",)),), {"i": 64}, OpKind.ALLREDUCE)])
    problems = engine_for("multicore").check(g, tiny, None)
    assert problems and problems[0].field == "einsum ar"


def test_vector_operators_are_bandwidth_or_throughput_bound(tiny):
    g = two_einsums(64, 8, 64)
    act = simulate(g, tiny).layers[1]
    nbytes = 2 * 64 * 64 * 2
    assert act["total_s"] == pytest.approx(max(nbytes / 8e9, 64 * 64 / 32e9) + 1e-6)


def test_a100_cores_preset_matches_its_datasheet_peaks():
    hw = load_hardware("a100-cores")
    assert 2 * hw.peak_macs_per_cycle * hw.clock_hz == pytest.approx(312e12, rel=1e-3)  # FP16 tensor dense
    assert hw.vector_flops_per_s == pytest.approx(19.5e12, rel=1e-3)  # FP32
    h = hw.hierarchy()
    assert [lv.name for lv in h.levels] == ["regs", "smem", "l2", "hbm2e"]
    # a large GEMM is compute-bound and within the waves of 108 SMs of the peak
    r = simulate(two_einsums(2048, 2048, 2048), hw, time_limit_s=5)
    mm = r.layers[0]
    ideal = 2048 ** 3 / hw.peak_macs_per_cycle / hw.clock_hz
    assert ideal <= mm["total_s"] - hw.launch_overhead_s <= 1.2 * ideal


def test_the_engine_cost_is_the_loopnest_cost(tiny):
    g = two_einsums()
    mapping = map_graph(g, tiny, "latency", 10)
    from accelsim.tiling import LoopNest

    nest = LoopNest.from_dict("mm", mapping.tiling["mm"])
    cost = evaluate(nest, LoopProblem.from_einsum(g.einsum("mm")), tiny.hierarchy())
    row = simulate(g, tiny, mapping).layers[0]
    assert row["total_s"] == pytest.approx(cost.latency_cycles / 1e9 + 1e-6)


def test_weights_larger_than_dram_cannot_run():
    spec = spec_from_dict({**TINY, "dram": {**TINY["dram"], "capacity_bytes": 4096}})
    problems = engine_for("multicore").check(two_einsums(), spec, None)  # W is 64 x 48 x 2 bytes
    assert problems and problems[0].field == "hardware.dram.capacity_bytes" and "6144 bytes" in problems[0].detail
