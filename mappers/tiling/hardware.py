"""The memory hierarchy the tiling mapper sees for a hardware spec.

``multicore`` specs describe their levels themselves (``MulticoreAccelerator.hierarchy``). A
``systolic`` spec (SCALE-Sim's shape) becomes three levels without changing the systolic kind:
the PEs (one word of each operand: the stationary value, the value passing through, the partial
sum), the three operand SRAMs (each double buffered, as SCALE-Sim halves them) with the array's
rows and columns fanning out below them, and DRAM at the spec's bandwidth.
"""
from __future__ import annotations

from dataclasses import replace

from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec
from accelsim.tiling import Hierarchy, LoopProblem


def hierarchy_for(spec: HardwareSpec, problem: LoopProblem | None = None) -> Hierarchy:
    """``problem``: the cores of a multicore spec split the output's ranks of that problem (a
    convolution's n, k, p, q), not the GEMM's names the spec states them in (``for_problem``)."""
    from accelsim.hardware.multicore import MulticoreAccelerator
    from accelsim.hardware.systolic import SystolicAccelerator

    if isinstance(spec, MulticoreAccelerator):
        return spec.hierarchy() if problem is None else for_problem(spec.hierarchy(), problem)
    if isinstance(spec, SystolicAccelerator):
        return systolic_hierarchy(spec)
    raise AccelsimError(f"the tiling mapper has no memory hierarchy for kind {spec.kind!r}", field="hardware",
                        allowed="a multicore or systolic design")


def for_problem(hierarchy: Hierarchy, problem: LoopProblem) -> Hierarchy:
    """``hierarchy`` with every fanout that may take only a GEMM's output ranks (b, m, n: cores
    that never reduce across each other) given ``problem``'s output ranks instead."""
    from accelsim.hardware.multicore import OUTPUT_RANKS

    own = problem.output.ranks
    if own <= OUTPUT_RANKS:
        return hierarchy
    levels = tuple(replace(lv, fanouts=tuple(replace(f, allowed_ranks=own) if f.allowed_ranks == OUTPUT_RANKS else f
                                             for f in lv.fanouts)) for lv in hierarchy.levels)
    return replace(hierarchy, levels=levels)


def systolic_hierarchy(spec) -> Hierarchy:
    """The array's hierarchy with any rank on the rows and columns (the mapper may pick another
    dataflow; ``accelsim.engines.systolic.nest.array_hierarchy`` keeps the spec's)."""
    from accelsim.engines.systolic.nest import array_hierarchy

    return array_hierarchy(spec, dataflow_only=False)


def dtype_bytes_for(spec: HardwareSpec, default: int = 2) -> int:
    """Element size a GEMM given by shape only uses on ``spec`` (the systolic word, else fp16)."""
    return int(getattr(spec, "word_bytes", default))


def scalesim_fold_nest(problem, spec):
    """SCALE-Sim's fixed schedule on ``spec`` as a loop nest, or None
    (``accelsim.engines.systolic.nest.fold_order_nest``)."""
    from accelsim.engines.systolic.nest import fold_order_nest

    return fold_order_nest(problem, spec)
