"""Serving requests and seeded request traces for ``workloads.serving.serve``.

Why a separate module: a trace (who arrives when, with how many prompt and output tokens) is
the experiment's input and must be reproducible by seed alone, independently of the engine and
the scheduling policy, so continuous and static batching can be compared on the same arrivals.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError

# a trace is held in memory and served iteration by iteration: beyond this it is hours of wall time
MAX_REQUESTS = 1_000_000
MAX_LENGTH_TOKENS = 10_000_000  # far past any model's context; the model's own limit is checked when built
LengthSpec = int | tuple[int, int]  # a fixed length, or (lo, hi) drawn uniformly (inclusive)


@dataclass(frozen=True)
class Request:
    """One request: it arrives at ``arrival_s`` with ``input_len`` prompt tokens and wants
    ``output_len`` generated tokens (the first comes out of its prefill)."""

    rid: int
    arrival_s: float
    input_len: int
    output_len: int


def _check_length(name: str, spec: LengthSpec) -> tuple[int, int]:
    lo, hi = (spec, spec) if isinstance(spec, int) and not isinstance(spec, bool) else tuple(spec)  # type: ignore[arg-type]
    if (not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) or lo < 1 or hi < lo
            or hi > MAX_LENGTH_TOKENS):
        raise AccelsimError(f"must be an integer >= 1 or a range lo:hi with 1 <= lo <= hi <= {MAX_LENGTH_TOKENS}, "
                            f"got {spec!r}", field=name)
    return lo, hi


def make_trace(n_requests: int, *, input_len: LengthSpec, output_len: LengthSpec, rate_per_s: float | None = None,
               seed: int = 0) -> list[Request]:
    """``n_requests`` requests: all at t = 0 (``rate_per_s`` None) or a Poisson process of that
    rate (exponential inter-arrival gaps, the first request at t = 0); lengths fixed or uniform
    integers in ``(lo, hi)``. One ``numpy`` generator seeded by ``seed`` draws everything."""
    if not isinstance(n_requests, int) or isinstance(n_requests, bool) or not 1 <= n_requests <= MAX_REQUESTS:
        raise AccelsimError(f"must be an integer in [1, {MAX_REQUESTS}], got {n_requests!r}", field="requests")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise AccelsimError(f"must be an integer in [0, 2**63), got {seed!r}", field="seed")
    if rate_per_s is not None and not (isinstance(rate_per_s, int | float) and np.isfinite(rate_per_s)
                                       and rate_per_s > 0):
        raise AccelsimError(f"must be a finite number > 0 (requests per second), got {rate_per_s!r}", field="rate")
    in_lo, in_hi = _check_length("input_len", input_len)
    out_lo, out_hi = _check_length("output_len", output_len)
    rng = np.random.default_rng(seed)
    if rate_per_s is None:
        arrivals = np.zeros(n_requests)
    else:
        gaps = rng.exponential(1.0 / rate_per_s, n_requests)
        gaps[0] = 0.0
        arrivals = np.cumsum(gaps)
    ins = rng.integers(in_lo, in_hi + 1, n_requests)
    outs = rng.integers(out_lo, out_hi + 1, n_requests)
    return [Request(i, float(arrivals[i]), int(ins[i]), int(outs[i])) for i in range(n_requests)]


def trace_from_lists(input_lens: Sequence[int], output_lens: Sequence[int],
                     arrivals_s: Sequence[float] | None = None) -> list[Request]:
    """A trace given explicitly (lengths per request; arrivals default to all at t = 0)."""
    if len(input_lens) != len(output_lens) or (arrivals_s is not None and len(arrivals_s) != len(input_lens)):
        raise AccelsimError("input_lens, output_lens (and arrivals_s) must have the same length", field="requests")
    if not input_lens:
        raise AccelsimError("a trace needs at least one request", field="requests")
    arrivals = list(arrivals_s) if arrivals_s is not None else [0.0] * len(input_lens)
    out = []
    for i, (a, li, lo) in enumerate(zip(arrivals, input_lens, output_lens)):
        _check_length("input_len", li)
        _check_length("output_len", lo)
        if not (np.isfinite(a) and a >= 0):
            raise AccelsimError(f"arrival times must be finite and >= 0, got {a!r}", field="arrivals_s")
        out.append(Request(i, float(a), int(li), int(lo)))
    return sorted(out, key=lambda r: (r.arrival_s, r.rid))
