"""Every registered engine, held to one contract (Stream's conformance kit, Timeloop's check).

A new hardware family passes this without anyone editing the test: it iterates the registry.
"""
from __future__ import annotations

import pytest

from accelsim.engines.registry import Problem, discover
from accelsim.hardware.base import list_presets
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from accelsim.mapping import Mapping
from accelsim.simulate import simulate

ENGINES = sorted(discover())


def two_einsum_graph(m: int = 64, k: int = 128, n: int = 96, dtype: int = 2) -> Graph:
    """Y = X W (a GEMM), then Z = activation(Y): one matrix op and one vector op."""
    x = Tensor("X", ("m", "k"), (m, k), dtype, TensorRole.INPUT)
    w = Tensor("W", ("k", "n"), (k, n), dtype, TensorRole.WEIGHT)
    y = Tensor("Y", ("m", "n"), (m, n), dtype, TensorRole.ACTIVATION)
    z = Tensor("Z", ("m", "n"), (m, n), dtype, TensorRole.OUTPUT)
    mm = Einsum("mm", Operand(y, ("m", "n")), (Operand(x, ("m", "k")), Operand(w, ("k", "n"))),
                {"m": m, "k": k, "n": n}, OpKind.MAC)
    act = Einsum("act", Operand(z, ("m", "n")), (Operand(y, ("m", "n")),), {"m": m, "n": n}, OpKind.ACTIVATION,
                 {"kind": "gelu"})
    return Graph("two", [mm, act])


def smallest_preset(kind: str):
    presets = list_presets(kind)
    assert presets, f"kind {kind} has an engine but no preset"
    return min(presets, key=lambda p: len(p.model_dump_json()))


@pytest.mark.parametrize("kind", ENGINES)
def test_engine_fills_the_core_and_obeys_conservation(kind):
    hw = smallest_preset(kind)
    graph = two_einsum_graph()
    report = simulate(graph, hw)
    core = report.core
    assert core is not None, "every engine fills Report.core"
    assert core.total_s > 0
    compulsory = sum(t.bytes for t in graph.tensors.values() if t.role in (TensorRole.INPUT, TensorRole.WEIGHT))
    compulsory += graph.tensors["Z"].bytes
    # the level that holds the tensors (DRAM or HBM; a wafer's SRAM) moves at least the compulsory bytes
    assert sum(core.read_bytes.values()) + sum(core.write_bytes.values()) >= compulsory
    for unit, u in core.utilization.items():
        assert -1e-12 <= u <= 1 + 1e-9, (unit, u)
    assert core.macs == pytest.approx(64 * 128 * 96)
    assert {r["name"] for r in report.layers} >= {"mm", "act"}, "a per-operator row for every Einsum"
    engine = discover()[kind]
    for name in engine.metrics:
        assert name in report.totals, f"declared metric {name} missing from totals"


@pytest.mark.parametrize("kind", ENGINES)
def test_check_returns_problems_as_data(kind):
    hw = smallest_preset(kind)
    engine = discover()[kind]
    bad = Mapping(graph="two", schedule=["no_such_einsum"])
    found = engine.check(two_einsum_graph(), hw, bad)
    assert found and all(isinstance(p, Problem) and p.field for p in found)


@pytest.mark.parametrize("kind", ENGINES)
def test_a_small_zoo_model_decodes(kind):
    from workloads.models import load_model
    from workloads.transformer import build_model

    model = build_model(load_model("gpt2"), "decode", batch=1, context=128)
    report = simulate(model, smallest_preset(kind))
    assert report.core.total_s > 0
    need = compulsory_reads(model)
    for role, nbytes in need.items():  # every weight and KV byte a step touches is read at least once
        assert report.core.offchip_bytes_by_role.get(role, 0.0) >= nbytes * (1 - 1e-9), role


def compulsory_reads(model) -> dict[str, float]:
    """Bytes of weights and KV cache one step must read: per tensor the largest touched share any
    reader needs, times the part's repeat."""
    need: dict[str, float] = {}
    for part in model.parts:
        per: dict[str, tuple[str, float]] = {}
        for e in part.graph.einsums:
            touched = e.attrs.get("touched", {})
            for o in e.inputs:
                t = o.tensor
                if t.role in (TensorRole.WEIGHT, TensorRole.KV_CACHE):
                    share = t.bytes * float(touched.get(t.name, 1.0))
                    per[t.name] = (t.role.value, max(share, per.get(t.name, ("", 0.0))[1]))
        for role, nbytes in per.values():
            need[role] = need.get(role, 0.0) + nbytes * part.repeat
    return need


def test_unknown_kind_is_one_clear_error():
    from accelsim.engines.registry import engine_for
    from accelsim.errors import AccelsimError

    with pytest.raises(AccelsimError, match="hardware.kind"):
        engine_for("no-such-kind")
