"""Small graphs for the COSMA tests, built with accelsim.ir (one 1-D tensor per size, one rank per tensor)."""
from __future__ import annotations

import random

from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole


def graph_from_lists(name: str, ops: list[tuple[list[int], list[int]]], sizes: list[int],
                     roles: dict[int, TensorRole] | None = None) -> Graph:
    """Operator ``i`` reads tensors ``ops[i][0]`` and writes ``ops[i][1][0]``; tensor ``t`` has ``sizes[t]`` bytes."""
    roles = roles or {}
    produced = {outs[0] for _, outs in ops}

    def tensor(t: int) -> Tensor:
        role = roles.get(t, TensorRole.ACTIVATION if t in produced else TensorRole.INPUT)
        return Tensor(f"t{t}", (f"r{t}",), (sizes[t],), 1, role)

    einsums = []
    for i, (ins, outs) in enumerate(ops):
        out = tensor(outs[0])
        inputs = tuple(Operand(tensor(t), (f"r{t}",)) for t in ins)
        extents = {f"r{t}": sizes[t] for t in (*ins, outs[0])}
        einsums.append(Einsum(f"op{i}", Operand(out, (f"r{outs[0]}",)), inputs, extents,
                              OpKind.COPY if len(ins) <= 1 else OpKind.ADD))
    return Graph(name, einsums)


def tiny_graph() -> Graph:
    """The instance in PAPERS.md: op0 -> t10 (10 B); op1 -> t11 (100 B); op2: t11 -> t12; op3: {t10, t12} -> t13."""
    return graph_from_lists("tiny", [([], [0]), ([], [1]), ([1], [2]), ([0, 2], [3])], [10, 100, 100, 10])


def random_dag(seed: int, n_ops: int = 5, max_size: int = 4, n_sources: int = 1,
               p_edge: float = 0.45) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
    """A random DAG: sources first, then operators each writing one new tensor and reading 0-3 earlier ones."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, max_size) for _ in range(n_sources)]
    ops = []
    available = list(range(n_sources))
    for _ in range(n_ops):
        ins = [t for t in available if rng.random() < p_edge][:3]
        out = len(sizes)
        sizes.append(rng.randint(1, max_size))
        ops.append((ins, [out]))
        available.append(out)
    # unused sources would be noise; make the first operator read every unused one
    used = {t for ins, _ in ops for t in ins}
    for t in range(n_sources):
        if t not in used:
            ops[0][0].append(t)
    return ops, sizes


def random_problems(max_ops: int):
    """Hypothesis strategy: (graph, MemoryProblem, capacity) of a random DAG of 3..max_ops operators,
    the capacity between the largest working set and the default order's peak."""
    from hypothesis import strategies as st

    from mappers.memory_problem import MemoryProblem

    @st.composite
    def draw_problem(draw):
        seed = draw(st.integers(0, 10_000))
        ops, sizes = random_dag(seed, n_ops=draw(st.integers(3, max_ops)), max_size=20,
                                n_sources=draw(st.integers(1, 3)))
        graph = graph_from_lists(f"h{seed}", ops, sizes)
        pb = MemoryProblem.from_graph(graph)
        top = max(pb.m_r, pb.peak_bytes(list(range(pb.n_ops))))
        return graph, pb, draw(st.integers(pb.m_r, top))

    return draw_problem()
