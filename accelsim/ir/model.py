"""Whole models: parts (Graphs) in execution order, each repeated, so identical layers are built
and simulated once.

Why in the IR: engines and sweeps take a ``ModelGraph`` as a workload type of its own
(``isinstance``, not duck typing), and the IR must not import ``workloads/`` to name it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from accelsim.errors import AccelsimError
from accelsim.ir.core import Einsum, Graph, Operand, Tensor, TensorRole


@dataclass(frozen=True)
class Part:
    """A Graph executed ``repeat`` times in sequence (identical layers).

    ``input``/``output`` name the tensors carrying the hidden state in and out, so ``expand``
    can chain repeats and parts into one connected Graph.
    """

    name: str
    graph: Graph
    repeat: int = 1
    input: str | None = None
    output: str | None = None


@dataclass
class ModelGraph:
    """A whole model for one phase: parts in execution order, each repeated."""

    name: str
    parts: list[Part]
    config: Any = None  # the workloads.config.ModelConfig it was built from, when there is one
    meta: dict[str, object] = field(default_factory=dict)

    def einsums(self) -> Iterator[tuple[Einsum, int]]:
        """Each distinct Einsum with how many times it runs."""
        for part in self.parts:
            for e in part.graph.einsums:
                yield e, part.repeat

    def _weights(self) -> list[tuple[Tensor, int]]:
        from accelsim.ir.resident import resident_tensors

        return list(resident_tensors((p.name, p.graph, p.repeat) for p in self.parts).values())

    def weight_elements(self) -> int:
        """Parameters on one device (see ``accelsim.ir.resident`` for how shared weights count once)."""
        return sum(t.elements * n for t, n in self._weights())

    def weight_bytes(self) -> int:
        return sum(t.bytes * n for t, n in self._weights())

    @property
    def flops_dense(self) -> int:
        """Iteration-space FLOPs, ignoring ``flop_fraction`` (an upper bound)."""
        return sum(e.flops * n for e, n in self.einsums())

    def expand(self) -> Graph:
        """The flat, connected Graph of every layer.

        Each repeat's Einsums and tensors are renamed ``<part>.<i>.<name>``; a part's hidden-state
        input becomes the previous part's (or repeat's) output. Tensors shared by all layers (graph
        inputs without a dotted name: ``rope_table``, ``token_ids``, ``encoder_out``) keep their
        names. For an encoder-decoder prefill the decoder chain is fed by the encoder's output (the
        decoder's own token embedding is not a separate part).
        """
        out: list[Einsum] = []
        carry: Tensor | None = None
        for part in self.parts:
            for i in range(part.repeat):
                prefix = f"{part.name}.{i}." if part.repeat > 1 else ""
                mapping = {part.input: carry} if (part.input and carry is not None) else {}
                out.extend(_rename(e, prefix, mapping) for e in part.graph.einsums)
                if part.output:
                    t = part.graph.tensors[part.output]
                    carry = Tensor(prefix + t.name, t.dims, t.shape, t.dtype_bytes, t.role)
        return Graph(self.name, out)


def _rename(e: Einsum, prefix: str, mapping: dict[str, Tensor]) -> Einsum:
    def op(o: Operand) -> Operand:
        t = o.tensor
        if t.name in mapping:
            src = mapping[t.name]
            if src.shape != t.shape:
                raise AccelsimError(f"cannot chain {src.name} {src.shape} into {t.name} {t.shape}", field="expand")
            return Operand(Tensor(src.name, src.dims, src.shape, src.dtype_bytes, TensorRole.ACTIVATION), o.index)
        if not prefix or (t.role is TensorRole.INPUT and "." not in t.name):
            return o
        return Operand(Tensor(prefix + t.name, t.dims, t.shape, t.dtype_bytes, t.role), o.index)

    if not prefix and not mapping:
        return e
    renamed = {o.tensor.name: op(o).tensor.name for o in (*e.inputs, e.output)}
    attrs = dict(e.attrs)
    if "touched" in attrs:  # fractions are keyed by tensor name: follow the renaming
        attrs["touched"] = {renamed.get(k, k): v for k, v in attrs["touched"].items()}
    return Einsum(prefix + e.name, op(e.output), tuple(op(i) for i in e.inputs), e.extents, e.op, attrs)


def parts_of(workload: Any) -> list[Part]:
    """A workload as its parts: a ModelGraph's own, or a bare Graph as one unnamed part run once.

    Why one function: every engine walks parts (simulate each Graph once, scale by ``repeat``);
    written once, a new workload type or a wrong one fails the same way everywhere.
    """
    if isinstance(workload, ModelGraph):
        return list(workload.parts)
    if isinstance(workload, Graph):
        return [Part("", workload, 1)]
    raise AccelsimError(f"cannot simulate a {type(workload).__name__}", field="workload",
                        allowed="a Graph or a ModelGraph (accelsim.ir)")
