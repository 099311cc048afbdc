"""Per-operator working sets: COSMA's smallest feasible scratchpad M_R.

An operator can run only if all its inputs and its output are resident at once, so the largest
(inputs + output) over all operators is a lower bound on any scratchpad that runs the graph
without tiling (COSMA's budget M_R, Li, Gupta, Malik, arXiv 2311.18246). "Activations only"
leaves weights out (they are streamed); "with weights" counts them as resident tensors too.
A tensor read twice by one operator is counted once.
"""
from __future__ import annotations

from accelsim.ir import Einsum, Graph, TensorRole


def operator_footprint_bytes(einsum: Einsum, with_weights: bool) -> int:
    """Bytes of the distinct tensors one operator touches (weights only if ``with_weights``)."""
    tensors = {t.name: t for t in einsum.tensors if with_weights or t.role is not TensorRole.WEIGHT}
    return sum(t.bytes for t in tensors.values())


def max_operator_footprint(graph: Graph, with_weights: bool = False) -> int:
    """COSMA's M_R: the largest single-operator working set of ``graph``, in bytes."""
    return max(operator_footprint_bytes(e, with_weights) for e in graph.einsums)


def largest_operator(graph: Graph, with_weights: bool = False) -> Einsum:
    """The operator that sets M_R (first in graph order on ties)."""
    return max(graph.einsums, key=lambda e: operator_footprint_bytes(e, with_weights))
