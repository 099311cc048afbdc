"""What the spatial attention engine needs to know about a softmax cascade, read off its Graph.

Why derived and not written down: the cascade Graphs (``workloads/attention.py``: ``one_pass``,
``two_pass``, ``three_pass``) are the one description of attention. A second hand-written table
of the same Einsums (the engine used to carry one) can drift from them with nothing to notice.
Everything the cost model uses comes from the Einsums' ranks, op kinds and tensors:

- **level** of an Einsum: ``tile`` if it iterates the key rank inside a tile (``m0``; one
  instance per P0 x M0 tile; in the untiled 3-pass cascade, any Einsum over ``m``), ``row`` if only the key-tile rank (``m1``; one value per query per
  key tile), ``final`` if neither (once per query tile, after the last key tile);
- **rank**: the one rank outside batch (b, h), queries (p) and keys (m, m1, m0), the embedding E
  or F, whose extent multiplies an Einsum's work (QK contracts E, SLNV and RNV produce F values);
- **dependencies**: producer -> consumers through the Graph's tensors. A recurrence the Graph
  writes as one Einsum with ``attrs["fused"] = [scale, update]`` (``RD = SLD + PRM * RD[m1-1]``)
  is expanded into the paper's two Einsums: the scaling (``mul``, reading the ``carry_scale``
  tensor and the carried state) and the update (the Einsum's own op, reading the rest);
- **tile tensors**: outputs indexed by ``m0`` (crossing arrays means staging a whole tile);
- **m0 reductions**: Einsums over ``m0`` whose output is not (a column reduction on the 2D array);
- **streaming**: a consumer that is element-wise along the embedding rank of an m0 reduction's
  output may take each value column as it is emitted (SLNV -> RNV), in the same stage;
- **deferrable**: Einsums feeding only the final one, and the final one (state updates that may
  run in the next tile's stages); **carried**: reads of the previous key tile's value.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from accelsim.errors import AccelsimError
from accelsim.ir import Graph
from accelsim.ir.views import AttentionShape

BATCH_RANKS = ("b", "h")
QUERY_RANKS = ("p",)
KEY_RANKS = ("m", "m1", "m0")
TILE_RANKS = frozenset(BATCH_RANKS + QUERY_RANKS + KEY_RANKS)


@dataclass(frozen=True)
class CascadeEinsum:
    """One Einsum as the engine costs it: op kind, level and embedding rank (or None)."""

    name: str
    op: str
    level: str  # "tile", "row" or "final"
    rank: str | None

    def factor(self, s: AttentionShape) -> int:
        """The embedding extent multiplying this Einsum's work per element (1 if none)."""
        return {"e": s.e, "f": s.f, None: 1}[self.rank]


@dataclass(frozen=True)
class Cascade:
    """A softmax cascade's structure: Einsums (fused recurrences expanded, topological order) and
    the relations the schedule and cost model need. Built from a Graph by ``cascade_of``."""

    kind: str  # "1pass", "2pass" or "3pass"
    einsums: dict[str, CascadeEinsum]
    deps: dict[str, tuple[str, ...]]
    carried: frozenset[tuple[str, str]] = frozenset()
    m0_reductions: frozenset[str] = frozenset()
    streaming: frozenset[tuple[str, str]] = frozenset()
    tile_tensors: frozenset[str] = frozenset()
    deferrable: tuple[str, ...] = ()
    first: str = ""  # reads the graph's inputs Q and K: its stage waits for the K/V tile
    final: str = ""  # the one ``final``-level Einsum (1-pass: AV, once per query tile)
    macs: tuple[str, ...] = field(default=())  # MAC Einsums in order (3-pass: QK, AV)

    def op(self, name: str) -> str:
        return self.einsums[name].op

    @property
    def names(self) -> list[str]:
        return list(self.einsums)


def _rank(e, where: str) -> str | None:
    extra = sorted(set(e.extents) - TILE_RANKS)
    if len(extra) > 1:
        raise AccelsimError(f"{e.name} iterates {extra}; the attention engine costs at most one embedding rank "
                            "per Einsum", field=where, allowed=["e", "f"])
    if extra and extra[0] not in ("e", "f"):
        raise AccelsimError(f"{e.name} iterates rank {extra[0]!r}", field=where,
                            allowed=sorted(TILE_RANKS | {"e", "f"}))
    return extra[0] if extra else None


def _level(e) -> str:
    if "m0" in e.extents or "m" in e.extents:  # untiled (3-pass) Einsums over the keys act per score
        return "tile"
    if "m1" in e.extents:
        return "row"
    return "final"


def _kind(graph: Graph) -> str:
    tiled = any("m0" in e.extents for e in graph.einsums)
    scans = any("scan" in e.attrs for e in graph.einsums)
    if not tiled:
        return "3pass"
    return "1pass" if scans else "2pass"


def attention_shape(graph: Graph) -> AttentionShape:
    """The layer's ranks from the cascade's input tensors Q[b,h,e,p], K[b,h,e,m], V[b,h,f,m]."""
    ext: dict[str, int] = {}
    for name in ("Q", "K", "V"):
        t = graph.tensors.get(name)
        if t is None:
            raise AccelsimError(f"an attention cascade reads tensors Q, K and V; graph {graph.name!r} has no {name}",
                                field="workload", allowed=sorted(graph.tensors))
        ext.update(zip(t.dims, t.shape))
    try:
        return AttentionShape(ext["b"], ext["h"], ext["m"], ext["p"], ext["e"], ext["f"])
    except KeyError as missing:
        raise AccelsimError(f"Q, K, V must be indexed [b,h,e,p], [b,h,e,m], [b,h,f,m]; no rank {missing}",
                            field="workload") from None


def cascade_of(graph: Graph) -> Cascade:
    """The engine's view of a cascade Graph (see the module docstring for every derived field)."""
    where = f"graph {graph.name}"
    kind = _kind(graph)
    order = graph.topological_order()
    einsums: dict[str, CascadeEinsum] = {}
    # graph Einsum name -> (name receiving the carry_scale input, name receiving the others)
    parts: dict[str, tuple[str, str]] = {}
    for e in order:
        level, rank = _level(e), _rank(e, where)
        fused = e.attrs.get("fused")
        if fused:
            scale, update = fused
            if update != e.name or "carry_scale" not in e.attrs:
                raise AccelsimError(f"{e.name}: attrs.fused must be [scaling, {e.name}] with a carry_scale",
                                    field=where)
            einsums[scale] = CascadeEinsum(scale, "mul", level, rank)
            parts[e.name] = (scale, e.name)
        einsums[e.name] = CascadeEinsum(e.name, e.op.value, level, rank)
        parts.setdefault(e.name, (e.name, e.name))
    deps: dict[str, list[str]] = {}
    carried: set[tuple[str, str]] = set()
    for e in order:
        scale, update = parts[e.name]
        if scale != update:
            deps.setdefault(scale, []).append(update)
            carried.add((update, scale))  # the update at tile t is scaled at tile t + 1
        elif "scan" in e.attrs:
            carried.add((e.name, e.name))
        for o in e.inputs:
            prod = graph.producer.get(o.tensor.name)
            if prod is None:
                continue
            target = scale if o.tensor.name == e.attrs.get("carry_scale") else update
            p_out = parts[prod.name][1]
            if target not in deps.setdefault(p_out, []):
                deps[p_out].append(target)
            if any("m1-1" in i.replace(" ", "") for i in o.index):
                carried.add((p_out, target))
    rank_of = {e.name: e for e in order}
    m0_red = frozenset(e.name for e in order if "m0" in e.extents and "m0" not in e.output.tensor.dims)
    tile_t = frozenset(e.name for e in order if "m0" in e.output.tensor.dims)
    streaming = frozenset(
        (p, c) for p in m0_red for c in deps.get(p, ())
        if einsums[p].rank and c in rank_of and einsums[p].rank in rank_of[p].output.tensor.dims
        and einsums[p].rank in rank_of[c].output.tensor.dims)
    finals = [n for n, ce in einsums.items() if ce.level == "final"]
    roots = [e.name for e in order if not any(o.tensor.name in graph.producer for o in e.inputs)]
    final = finals[0] if kind == "1pass" and len(finals) == 1 else ""
    if kind == "1pass" and (len(finals) != 1 or len(roots) != 1):
        raise AccelsimError(f"a 1-pass cascade has one root Einsum (QK) and one final Einsum (AV); got roots "
                            f"{roots} and finals {finals}", field=where)
    deferrable = tuple(n for n in einsums if final and (n == final or (deps.get(n) and set(deps[n]) == {final})))
    return Cascade(kind, einsums, {k: tuple(v) for k, v in deps.items() if v}, frozenset(carried), m0_red,
                   streaming, tile_t, deferrable, roots[0] if roots else "", final,
                   tuple(n for n, ce in einsums.items() if ce.op == "mac"))
