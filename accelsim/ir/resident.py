"""Which tensors occupy device memory for a whole model, each counted once.

Why one function: parameter counts (``ModelGraph.weight_elements``/``weight_bytes``) and the
roofline's resident-memory check must agree on what "the same weight" is, or the memory check
and the published-parameter test drift apart. The rules:

- a part repeated ``n`` times (identical layers) holds ``n`` copies of each of its tensors;
- a tensor in a part run once is shared by name with every other once-run part (tied input
  embedding and LM head are one table);
- a tensor named ``<base>_shard`` whose ``<base>`` is also resident is a slice of that tensor
  (the vocabulary shard a tied LM head uses under tensor parallelism) and adds nothing.
"""
from __future__ import annotations

from collections.abc import Iterable

from accelsim.ir.core import Graph, Tensor, TensorRole

SHARD_SUFFIX = "_shard"


def resident_tensors(parts: Iterable[tuple[str, Graph, int]],
                     roles: Iterable[TensorRole] = (TensorRole.WEIGHT,)) -> dict[str, tuple[Tensor, int]]:
    """``{key: (tensor, copies)}`` for every distinct resident tensor of ``roles`` in ``parts``
    (``(part name, graph, repeat)`` triples in execution order)."""
    wanted = set(roles)
    found: dict[str, tuple[Tensor, int]] = {}
    for part, graph, repeat in parts:
        for t in graph.tensors.values():
            if t.role not in wanted:
                continue
            key = t.name if repeat == 1 else f"{part}.{t.name}"
            found.setdefault(key, (t, repeat))
    return {k: v for k, v in found.items()
            if not (k.endswith(SHARD_SUFFIX) and k.removesuffix(SHARD_SUFFIX) in found)}
