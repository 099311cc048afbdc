"""Published closed forms of the wafer-scale reduce model, used to check the hop-by-hop simulator.

Source: Luczynski, Gianinazzi, Iff, Wilson, De Sensi, Hoefler, "Near-Optimal Wafer-Scale Reduce",
HPDC'24 (arXiv 2404.15888), validated within 4% on a CS-2; the forms as collected in
/work/shared/reference/PIM_WAFER.md §4.3. The model is T = max(C, E/N) + L + (2 T_R + 1) D with
one cycle per hop (alpha = 1); B is the vector length in wavelets and P the number of cores.
Here ``beta = 2 T_R + 1`` (one relay stage), so the forms are written with alpha and beta and
reduce to the paper's with alpha = 1, T_R = 2.
"""
from __future__ import annotations

import math


def star_reduce(p: int, b: float, beta: float = 5.0) -> float:
    """B (P - 1) + 2 T_R + 1: the root's link carries everyone's vector; one stage deep."""
    return b * (p - 1) + beta


def chain_reduce(p: int, b: float, alpha: float = 1.0, beta: float = 5.0) -> float:
    """B + (2 T_R + 2)(P - 1): P - 1 one-hop relay stages, the vector pipelined through them."""
    return b + (alpha + beta) * (p - 1)


def two_phase_reduce(p: int, b: float, alpha: float = 1.0, beta: float = 5.0) -> float:
    """Groups of sqrt(P): contention 2B, depth 2 sqrt(P) - 2, distance P - 1 hops."""
    s = math.sqrt(p)
    return 2 * b + alpha * (p - 1) + beta * (2 * s - 2)


def ring_allreduce(p: int, b: float, alpha: float = 1.0, beta: float = 5.0) -> float:
    """2 (P - 1) B / P + 4 P - 6 + 2 (P - 1)(2 T_R + 1): 2 (P - 1) steps of B / P on a ring
    embedded in the line (each chunk crosses about 2 P - 3 hops per phase)."""
    return 2 * (p - 1) * b / p + alpha * (4 * p - 6) + 2 * (p - 1) * beta


def broadcast_1d(p: int, b: float, alpha: float = 1.0, beta: float = 5.0) -> float:
    """B + P + 2 T_R: flooding from one end, written B + (P - 1) alpha + beta (the same with alpha = 1)."""
    return b + alpha * (p - 1) + beta
