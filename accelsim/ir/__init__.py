"""The IR: Tensor, Einsum, Graph (``core``) and whole models of repeated parts (``model``).

``from accelsim.ir import Graph`` keeps working for every name that ``accelsim/ir.py`` had.
"""
from accelsim.ir.core import (  # noqa: F401
    SOURCE_ROLES,
    AffineIndex,
    Einsum,
    GemmShape,
    Graph,
    Operand,
    OpKind,
    Tensor,
    TensorRole,
)
from accelsim.ir.builders import conv2d, gemm  # noqa: F401
from accelsim.ir.model import ModelGraph, Part, parts_of  # noqa: F401
