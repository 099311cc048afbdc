"""Padding: map a GEMM whose extents tile badly (a prime M, a vocabulary of 50257) as a slightly
larger one whose extents have divisors that fill the array and the cores.

Why: the search's tiles are divisors (perfect factorisation). A prime extent can then only sit
whole at one level, which can leave most of the array idle. A real kernel computes the last,
partial tile as a full one; padding the rank up to a multiple of ``granule`` models exactly
that, and the costs of the padded problem (MACs and bytes of the padding included) are never
below those of the real one. The mapper keeps the better of the unpadded and padded optima.
"""
from __future__ import annotations

from accelsim.tiling import LoopProblem

GRANULES: tuple[int, ...] = (16, 128)  # multiples tried: an array edge, a typical tile edge


def candidates(problem: LoopProblem) -> list[dict[str, int]]:
    """Extents to try: the problem's own, then each granule's padding (distinct ones only)."""
    out = [dict(problem.extents)]
    for g in GRANULES:
        ext = {r: (-(-e // g) * g if e > g else e) for r, e in problem.extents.items()}
        if ext not in out:
            out.append(ext)
    return out
