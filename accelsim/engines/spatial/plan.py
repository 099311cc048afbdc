"""``AttentionPlan``: the engine's internal view of a (cascade Graph, Mapping) pair.

Why a view and not a fourth mapping type: mappers emit ``accelsim.mapping.Mapping`` (binding:
Einsum -> ``2d``/``1d``; tiling: ``p0`` queries x ``m0`` keys per tile and ``p1`` query tiles per
K/V pass, or queries per FLAT row block; ``pipeline``: stages, deferral, interleaving, fusion and
off-chip tensors). The simulator decodes that here, checks it against the Graph's cascade
(``cascade.cascade_of``), and costs the flat record below; ``encode`` is the inverse, so a
Mapping saved as YAML and loaded again replays to the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from accelsim.engines.spatial.cascade import Cascade, cascade_of
from accelsim.errors import AccelsimError
from accelsim.ir import Graph
from accelsim.mapping import Mapping, Pipeline

# 3-pass designs: MACs (QK, AV) on the 2D array, the softmax Einsums on the 1D array
THREE_PASS_UNITS = {"mac": "2d"}
OFFCHIP_SCORES = ("QK", "A")  # the 3-pass score tensors a design may keep in DRAM


@dataclass(frozen=True)
class AttentionPlan:
    """How one attention layer runs: design label, cascade, tiling, binding and schedule."""

    design: str
    cascade: str  # "1pass" or "3pass"
    p0: int
    m0: int
    p1: int = 1  # 1-pass: query tiles per K/V pass; FLAT: queries per fused row block
    binding: dict[str, str] = field(default_factory=dict)
    stages: tuple[tuple[str, ...], ...] = ()
    deferred: frozenset[str] = frozenset()
    interleaved: bool = True
    qk_onchip: bool = True  # 3-pass: FLAT keeps score rows on chip (spilling overflow)
    fused: bool = True  # 3-pass: False = unfused baseline (QK and A through DRAM)
    table: Cascade | None = field(default=None, compare=False, repr=False)  # the Graph's cascade

    def describe(self) -> dict:
        return {"design": self.design, "cascade": self.cascade, "p0": self.p0, "m0": self.m0, "p1": self.p1,
                "binding": dict(self.binding), "stages": [list(s) for s in self.stages],
                "deferred": sorted(self.deferred), "interleaved": self.interleaved,
                "qk_onchip": self.qk_onchip, "fused": self.fused}

    @property
    def cascade_table(self) -> Cascade:
        if self.table is None:
            raise AccelsimError("plan carries no cascade (decode it from a Graph and a Mapping)", field="plan")
        return self.table


def check_schedule(plan: AttentionPlan) -> None:
    """Every Einsum placed once; producers before consumers (same array: same or earlier
    stage; other array: earlier stage unless streaming); deferred ones only feed the next tile."""
    c = plan.cascade_table
    placed = [e for st in plan.stages for e in st]
    missing = set(c.einsums) - set(placed)
    extra = [e for e in placed if placed.count(e) > 1 or e not in c.einsums]
    if missing or extra:
        raise AccelsimError(f"schedule must place each 1-pass Einsum once (missing {sorted(missing)}, "
                            f"bad {sorted(set(extra))})", field="plan.stages", allowed=c.names)
    n = len(plan.stages)
    pos = {e: i + (n if e in plan.deferred else 0) for i, st in enumerate(plan.stages) for e in st}
    for prod, cons in c.deps.items():
        for cn in cons:
            same = plan.binding[prod] == plan.binding[cn]
            ok = pos[prod] <= pos[cn] if (same or (prod, cn) in c.streaming) else pos[prod] < pos[cn]
            if ok and same and pos[prod] == pos[cn]:
                st = plan.stages[pos[cn] % n]
                ok = st.index(prod) < st.index(cn)
            if not ok:
                raise AccelsimError(f"{cn} reads {prod} before it is produced", field="plan.stages")
    for e in plan.deferred:
        if e not in c.deferrable:
            raise AccelsimError(f"only the state updates {', '.join(c.deferrable)} may be deferred, got {e}",
                                field="plan.deferred", allowed=list(c.deferrable))


def _tile(mapping: Mapping, graph: Graph) -> tuple[int, int, int]:
    sizes = {tuple(sorted((k, mapping.tiling.get(e.name, {}).get(k)) for k in ("p0", "m0", "p1")))
             for e in graph.einsums}
    if len(sizes) != 1:
        raise AccelsimError("every Einsum of an attention cascade needs the same tiling {p0, m0, p1}",
                            field="mapping.tiling")
    t = dict(sizes.pop())
    for k in ("p0", "m0", "p1"):
        if not isinstance(t[k], int) or isinstance(t[k], bool) or t[k] <= 0:
            raise AccelsimError(f"must be a positive integer, got {t[k]!r}", field=f"mapping.tiling.{k}")
    return t["p0"], t["m0"], t["p1"]


def decode(graph: Graph, mapping: Mapping) -> AttentionPlan:
    """The plan a Mapping describes for this cascade Graph, or one clear error."""
    mapping.validate(graph)
    table = cascade_of(graph)
    p0, m0, p1 = _tile(mapping, graph)
    pipe = mapping.pipeline or Pipeline()
    design = str(mapping.meta.get("design", "mapped"))
    if table.kind == "1pass":
        graph_m0 = next(e.extents["m0"] for e in graph.einsums if "m0" in e.extents)
        if m0 != graph_m0:
            raise AccelsimError(f"tiling m0 = {m0} but the Graph splits the keys into tiles of {graph_m0}",
                                field="mapping.tiling.m0", allowed=[graph_m0])
        if set(mapping.binding) != set(table.einsums) or set(mapping.binding.values()) - {"2d", "1d"}:
            raise AccelsimError(f"binding must map every 1-pass Einsum {table.names} to 2d or 1d",
                                field="mapping.binding", allowed=["2d", "1d"])
        if not pipe.stages:
            raise AccelsimError("a 1-pass mapping needs pipeline.stages", field="mapping.pipeline.stages")
        return AttentionPlan(design, "1pass", p0, m0, p1, {e: mapping.binding[e] for e in table.einsums},
                             tuple(tuple(st) for st in pipe.stages), frozenset(pipe.deferred), pipe.interleaved,
                             table=table)
    if table.kind == "3pass":
        expect = {e: THREE_PASS_UNITS.get(ce.op, "1d") for e, ce in table.einsums.items()}
        if mapping.binding and dict(mapping.binding) != expect:
            raise AccelsimError(f"3-pass designs run MACs on the 2D array and the softmax on the 1D array: {expect}",
                                field="mapping.binding")
        bad = set(pipe.offchip) - set(OFFCHIP_SCORES)
        if bad or (pipe.offchip and set(pipe.offchip) != set(OFFCHIP_SCORES)):
            raise AccelsimError(f"3-pass designs keep both or none of the scores off chip, got {sorted(pipe.offchip)}",
                                field="mapping.pipeline.offchip", allowed=list(OFFCHIP_SCORES))
        if not pipe.fused and not pipe.offchip:
            raise AccelsimError("an unfused 3-pass mapping passes QK and A through DRAM (offchip: [QK, A])",
                                field="mapping.pipeline.offchip")
        return AttentionPlan(design, "3pass", p0, m0, p1, qk_onchip=not pipe.offchip, fused=pipe.fused, table=table)
    raise AccelsimError(f"the spatial attention engine simulates the 1-pass and 3-pass cascades, not {table.kind}",
                        field="workload", allowed=["attention-1pass", "attention-3pass"])


def encode(plan: AttentionPlan, graph: Graph, hardware: str, mapper: str = "") -> Mapping:
    """The plan as a Mapping over ``graph``: schedule (topological), binding, tiling, pipeline."""
    names = [e.name for e in graph.topological_order()]
    table = cascade_of(graph)
    if plan.cascade == "1pass":
        binding = dict(plan.binding)
        pipe = Pipeline([list(s) for s in plan.stages], sorted(plan.deferred), plan.interleaved)
    else:
        binding = {e: THREE_PASS_UNITS.get(ce.op, "1d") for e, ce in table.einsums.items()}
        pipe = Pipeline(fused=plan.fused, offchip=[] if (plan.qk_onchip and plan.fused) else list(OFFCHIP_SCORES))
    m = Mapping(graph=graph.name, hardware=hardware, schedule=names, binding=binding,
                tiling={e: {"p0": plan.p0, "m0": plan.m0, "p1": plan.p1} for e in names}, pipeline=pipe,
                meta={"mapper": mapper, "design": plan.design})
    decode(graph, m)  # what is emitted must replay
    return m
