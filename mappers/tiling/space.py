"""The mapping space the tiling search walks: divisor tiles, spatial unrollings, loop orders.

What the space contains (so what "optimal" is relative to):

* Tiles are divisors (perfect factorisation): every rank's factors multiply to its extent.
* A fanout without ``waves`` (an array's rows or columns, tensor cores in a core) unrolls at
  most one rank, by a factor up to its size (Timeloop's usual constraint for a systolic edge).
* A fanout with ``waves`` (cores of a GPU fed by a shared L2) takes every factor of its allowed
  ranks at that level: the grid of output tiles is launched at once and the instances run it in
  waves; temporal loops at that level are over the other ranks (the reduction).
* Loop orders: every permutation of a level's non-trivial loops, deduplicated by what decides
  reuse (``order_signature``: per tensor, the product of the innermost run of loops that do not
  index it, and whether a loop of the level indexes it). Orders with equal signatures cost
  exactly the same, so dropping duplicates loses nothing; ``canonical_orders`` lists one order
  per signature without walking all permutations.
"""
from __future__ import annotations

import math
from functools import cache

from accelsim.tiling import Fanout, TensorAccess


@cache
def divisors(n: int) -> tuple[int, ...]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(sorted({*small, *(n // d for d in small)}))


def fanout_options(fanout: Fanout, rem: dict[str, int]) -> list[dict[str, int]]:
    """Unrollings of one non-wave fanout: nothing, or one rank by a divisor up to the size."""
    out: list[dict[str, int]] = [{}]
    for r, e in rem.items():
        if fanout.allowed_ranks is not None and r not in fanout.allowed_ranks:
            continue
        out += [{r: d} for d in divisors(e) if 1 < d <= fanout.size]
    return out


def spatial_options(fanouts: tuple[Fanout, ...], rem: dict[str, int]) -> list[tuple[dict[str, dict[str, int]],
                                                                                    dict[str, int]]]:
    """(spatial per non-wave fanout, what remains per rank), one per distinct unrolling per rank.

    Two assignments that unroll every rank by the same total factor (rows m16 and cols n16, or
    rows n16 and cols m16) cost the same: the cost model sees the product per rank and, for a
    fanout without waves, uses exactly the instances it is given. So one of each is kept.
    """
    results: list[tuple[dict[str, dict[str, int]], dict[str, int]]] = [({}, dict(rem))]
    for fo in fanouts:
        if fo.waves:
            continue
        grown = []
        for chosen, left in results:
            for opt in fanout_options(fo, left):
                nxt = dict(left)
                for r, f in opt.items():
                    nxt[r] //= f
                grown.append(({**chosen, fo.name: opt} if opt else chosen, nxt))
        results = grown
    seen: dict[tuple, tuple[dict[str, dict[str, int]], dict[str, int]]] = {}
    for chosen, left in results:
        seen.setdefault(tuple(sorted(left.items())), (chosen, left))
    return list(seen.values())


def order_signature(order: tuple[tuple[str, int], ...], tensors: tuple[TensorAccess, ...]) -> tuple:
    sig = []
    for t in tensors:
        run, closed = 1, False
        for r, f in reversed(order):
            if r in t.ranks:
                closed = True
                break
            run *= f
        sig.append((run, closed))
    return tuple(sig)


@cache
def canonical_orders(loops: tuple[bool, ...], indexes: tuple[frozenset[int], ...]) -> tuple[tuple[int, ...], ...]:
    """One loop order (a permutation of all ranks, outermost first) per distinct reuse signature.

    ``loops[r]``: rank ``r`` has a loop (factor > 1) at this level; ``indexes[r]``: the tensors
    rank ``r`` indexes. A tensor's reuse at a level is decided by the innermost loops up to the
    first one that indexes it, so an order is settled, innermost first, once every tensor with a
    loop of its own at this level has met one; the loops further out go in rank order. Walking
    every innermost-first prefix until then reaches every signature that some permutation has
    (the ranks without a loop come first, in rank order, as ``kids.build`` expects), without the
    ``R!`` permutations a 7-rank convolution would need.
    """
    ranks = [r for r, on in enumerate(loops) if on]
    trivial = tuple(r for r, on in enumerate(loops) if not on)
    needed = frozenset().union(*(indexes[r] for r in ranks)) if ranks else frozenset()
    out: dict[tuple, tuple[int, ...]] = {}

    def walk(prefix: tuple[int, ...], met: frozenset[int]) -> None:
        rest = [r for r in ranks if r not in prefix]
        if met >= needed or not rest:
            sig = []
            for t in sorted(needed):
                run = []
                for r in prefix:
                    if t in indexes[r]:
                        break
                    run.append(r)
                sig.append(frozenset(run))
            out.setdefault(tuple(sig), trivial + tuple(rest) + tuple(reversed(prefix)))
            return
        for r in rest:
            walk(prefix + (r,), met | indexes[r])

    walk((), frozenset())
    return tuple(out.values())
