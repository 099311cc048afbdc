"""The spatial attention engine: its cascade view comes from the Graph, its fast stream equals the
event-engine reference, and it replays Mappings (also after a YAML round trip)."""
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.spatial import (
    cascade_of,
    decode,
    one_pass_stream,
    one_pass_stream_reference,
    report,
    simulate,
    simulate_plan,
)
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Graph
from accelsim.mapping import Mapping
from mappers.fusemax import DESIGNS, mapped_graph, published_mapping, published_plan
from workloads.attention import AttentionShape, attention_model, cascade

# The FuseMax paper's 1-pass cascade (Nayak et al., MICRO 2024, Sec. 4, the Einsums of its
# Fig. 4 / the artifact's cost tables): name -> (op, per tile / per row / once, embedding rank)
PAPER_ONE_PASS = {
    "QK": ("mac", "tile", "e"), "LM": ("max", "tile", None), "RM": ("max", "row", None),
    "SLN": ("exp", "tile", None), "PRM": ("exp", "row", None), "SPD": ("mul", "row", None),
    "SLD": ("add", "tile", None), "RD": ("add", "row", None), "SLNV": ("mac", "tile", "f"),
    "SPNV": ("mul", "row", "f"), "RNV": ("add", "row", "f"), "AV": ("div", "final", "f"),
}
PAPER_DEPS = {("QK", "LM"), ("QK", "SLN"), ("LM", "RM"), ("RM", "SLN"), ("RM", "PRM"), ("SLN", "SLD"),
              ("SLN", "SLNV"), ("PRM", "SPD"), ("PRM", "SPNV"), ("SPD", "RD"), ("SLD", "RD"), ("SLNV", "RNV"),
              ("SPNV", "RNV"), ("RD", "AV"), ("RNV", "AV")}
SHAPE = AttentionShape(2, 3, 40, 24, 5, 3)


def test_one_pass_view_is_the_papers_cascade():
    c = cascade_of(cascade("1pass", SHAPE, m0=8))
    assert {n: (e.op, e.level, e.rank) for n, e in c.einsums.items()} == PAPER_ONE_PASS
    assert {(p, x) for p, xs in c.deps.items() for x in xs} == PAPER_DEPS
    assert c.m0_reductions == {"LM", "SLD", "SLNV"} and c.tile_tensors == {"QK", "SLN"}
    assert c.streaming == {("SLNV", "RNV")} and set(c.deferrable) == {"RD", "RNV", "AV"}
    assert c.carried == {("RM", "RM"), ("RM", "PRM"), ("RD", "SPD"), ("RNV", "SPNV")}
    assert (c.first, c.final) == ("QK", "AV")


@pytest.mark.parametrize("kind", ["1pass", "2pass", "3pass"])
def test_view_agrees_with_the_graph_einsum_by_einsum(kind):
    """For every cascade: each Graph Einsum is in the view with its op; its level and rank are
    what its extents say; every dependency is a tensor the consumer reads (or a fused part)."""
    g = cascade(kind, SHAPE, m0=8)
    c = cascade_of(g)
    assert c.kind == kind
    fused = {e.name: e.attrs["fused"] for e in g.einsums if "fused" in e.attrs}
    assert set(c.einsums) == {e.name for e in g.einsums} | {f[0] for f in fused.values()}
    for e in g.einsums:
        ce = c.einsums[e.name]
        assert ce.op == e.op.value
        extra = set(e.extents) - {"b", "h", "p", "m", "m1", "m0"}
        assert ce.rank == (extra.pop() if extra else None)
        level = "tile" if ({"m0", "m"} & set(e.extents)) else ("row" if "m1" in e.extents else "final")
        assert ce.level == level
        # volume check: tile-level work per (b, h) is P x M x rank extent for untiled-equivalent ranks
        if ce.level == "tile" and kind == "3pass":
            assert e.points == SHAPE.b * SHAPE.h * SHAPE.p * SHAPE.m * ce.factor(SHAPE)
    reads = {(g.producer[o.tensor.name].name, e.name) for e in g.einsums for o in e.inputs
             if o.tensor.name in g.producer}
    derived = {(p, x) for p, xs in c.deps.items() for x in xs}
    to_graph = {f[0]: name for name, f in fused.items()}  # a fused scaling part stands for its Einsum
    assert {(to_graph.get(p, p), to_graph.get(x, x)) for p, x in derived} - {(n, n) for n in to_graph.values()} == reads


def test_the_engine_reads_op_kinds_from_the_graph():
    """Change RM's op in the Graph (max -> exp, 7 cycles on FuseMax's 1D array): the simulated
    latency changes. A hard-coded table would not notice."""
    hw = load_hardware("fusemax-cloud")
    s = AttentionShape(1, 2, 512, 512, 64, 64)
    mapping = published_mapping("fusemax", hw, s)
    g = mapped_graph(s, mapping)
    base = simulate(g, hw, mapping).latency_cycles
    rm = g.einsum("RM")
    g2 = Graph(g.name, [replace(e, op="exp") if e is rm else e for e in g.einsums])
    assert simulate(g2, hw, mapping).latency_cycles > base


@pytest.mark.parametrize("design", DESIGNS)
def test_mapping_round_trip_through_yaml_replays_identically(design, tmp_path):
    hw = load_hardware({"unfused": "flat-cloud", "flat": "flat-cloud", "cascade": "flat-cloud"}.get(design,
                                                                                                   "fusemax-cloud"))
    s = attention_model("bert").shape(2048, batch=2)
    mapping = published_mapping(design, hw, s)
    path = tmp_path / "m.yaml"
    mapping.save(path)
    loaded = Mapping.load(path)
    assert "plan" not in loaded.meta and loaded.pipeline is not None
    a = report(mapped_graph(s, mapping), hw, mapping).totals
    b = report(mapped_graph(s, loaded), hw, loaded).totals
    assert a == b
    # and it is the published plan's simulation
    assert a["latency_cycles"] == simulate_plan(published_plan(design, hw, s), hw, s).latency_cycles


def test_decode_refuses_a_mapping_that_does_not_fit_the_graph():
    hw = load_hardware("fusemax-cloud")
    s = AttentionShape(1, 1, 600, 300, 8, 8)
    mapping = published_mapping("fusemax", hw, s)
    g = mapped_graph(s, mapping)
    bad = replace(mapping, binding={k: v for k, v in mapping.binding.items() if k != "SPD"})
    with pytest.raises(AccelsimError, match="binding"):
        decode(g, bad)
    with pytest.raises(AccelsimError, match="m0"):
        decode(cascade("1pass", s, m0=128), mapping)


# --- the fast stream equals the event-engine reference -----------------------------------------
def tiny(hw_name: str, pe: int, buffer_bytes: int, dram_bytes_per_s: float | None) -> SpatialAccelerator:
    data = load_hardware(hw_name).resized(pe, buffer_bytes).model_dump()
    if dram_bytes_per_s:
        data["dram"]["bandwidth_bytes_per_s"] = dram_bytes_per_s
    return SpatialAccelerator.model_validate(data)


@settings(max_examples=40, deadline=None)
@given(design=st.sampled_from(["fusemax", "arch", "cascade"]), pe=st.sampled_from([2, 4]),
       m=st.integers(1, 23), p=st.integers(1, 19), e=st.integers(1, 4), f=st.integers(1, 4),
       dram=st.sampled_from([None, 3e8, 2e9]), slack=st.integers(0, 300), p1=st.integers(1, 4),
       n_groups=st.integers(1, 3))
def test_fast_stream_equals_event_engine(design, pe, m, p, e, f, dram, slack, p1, n_groups):
    """Random small layers, DRAM-bound and compute-bound, buffers from just enough (loads wait for
    space) to roomy: the recursion gives the event engine's makespan."""
    s = AttentionShape(1, 1, m, p, e, f)
    hw_name = "flat-cloud" if design == "cascade" else "fusemax-cloud"
    probe = tiny(hw_name, pe, 10 ** 7, dram)
    plan = published_plan(design, probe, s)
    n_pt = -(-s.p // plan.p0)
    plan = replace(plan, p1=min(p1, n_pt))
    from accelsim.engines.spatial import one_pass_buffer_bytes
    need = one_pass_buffer_bytes(plan, s, 2)
    hw = tiny(hw_name, pe, need + slack, dram)
    n_kt = -(-s.m // plan.m0)
    last_m0 = s.m - (n_kt - 1) * plan.m0
    groups = [(plan.p1, plan.p0)] * (n_groups - 1) + [(max(1, plan.p1 - 1), max(1, plan.p0 - 1))]
    fast = one_pass_stream(plan, hw, s, groups, n_kt, last_m0)
    ref = one_pass_stream_reference(plan, hw, s, groups, n_kt, last_m0)
    assert fast == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("design", DESIGNS)
def test_registered_spatial_engine_replays_attention_mappings(design):
    """accelsim.simulate on a cascade Graph with a FuseMax mapping: the attention replay through
    the registered spatial engine, its typed core within the conservation bounds."""
    from accelsim.engines.registry import engine_for
    from accelsim.simulate import simulate as simulate_any
    hw = load_hardware("flat-cloud" if design in ("flat", "unfused", "cascade") else "fusemax-cloud")
    s = AttentionShape(1, 2, 1500, 700, 64, 64)
    mapping = published_mapping(design, hw, s)
    g = mapped_graph(s, mapping)
    rep = simulate_any(g, hw, mapping)
    core = rep.core
    assert core.total_s == rep.totals["latency_s"] > 0
    compulsory = 2 * s.b * s.h * (s.p * s.e + s.m * s.e + s.m * s.f + s.p * s.f)
    assert core.dram_bytes >= compulsory
    assert all(0 <= u <= 1 + 1e-9 for u in core.utilization.values())
    assert core.macs == s.b * s.h * s.p * s.m * (s.e + s.f)
    other = cascade("1pass" if design in ("fusemax", "arch", "cascade") else "3pass", AttentionShape(1, 2, 1500, 700, 64, 32),
                    m0=mapping.tiling["QK"]["m0"])
    problems = engine_for("spatial").check(cascade("2pass", s, m0=256), hw, mapping)
    assert problems and problems[0].field
    assert engine_for("spatial").check(other, hw, mapping) == []  # another F replays fine
