"""Iteration costs for the serving loop: one engine call per (phase, batch, length bucket).

Why a cache with buckets: a serving run of hundreds of requests has tens of thousands of
iterations, but a decode step's cost depends only on the batch size and the KV it reads, and a
prefill's only on the prompt length. Both are smooth in the length (decode: affine, every
attention byte and FLOP is linear in the KV length; prefill: linear plus a small quadratic
attention term), so the cost is simulated at the two bucket edges around the length and
interpolated linearly. ``bucket_tokens = 0`` turns that off: every distinct length is simulated
exactly (``accelsim.simulate`` on the step itself). Above ``BATCH_EXACT_UP_TO`` requests the
batch is bucketed too (multiples of ``batch_bucket``, linear in between): the weight bytes of a
step do not change with the batch and the rest is per request, so the cost is close to affine
there, while below it an engine's dispatch (Duplex sends a GEMV to PIM while its Op/B < 8)
switches with the batch and each size is simulated. ``batch_bucket = 0``: every batch exact.

Why the batch's mean KV length: ``build_model`` takes one ``context`` for the whole batch. A
decode step's attention reads every request's own KV, so the step's KV bytes and attention FLOPs
are ``sum_i kv_i`` = ``batch * mean``; building it with ``context = mean`` gives that total exactly
whenever the mean is an integer (it is rounded to the nearest token otherwise: an error below
one token per request). The max would over-count the KV traffic of a mixed batch (padding, as a
static-shape kernel would); the mean is what a paged-attention kernel reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from accelsim.errors import AccelsimError
from accelsim.simulate import simulate


@dataclass(frozen=True)
class StepCost:
    """One iteration's latency and the work it did (FLOPs, off-chip bytes from the Report core)."""

    latency_s: float
    flops: float
    offchip_bytes: float

    def lerp(self, other: StepCost, w: float) -> StepCost:
        return StepCost(*(a + (b - a) * w for a, b in ((self.latency_s, other.latency_s), (self.flops, other.flops),
                                                        (self.offchip_bytes, other.offchip_bytes))))


class IterationCosts(Protocol):
    """What the serving loop asks of a device: cost of a decode step and of one prefill."""

    def decode(self, batch: int, kv_tokens_total: int) -> StepCost: ...

    def prefill(self, input_len: int) -> StepCost: ...


def position_limit(cfg) -> int:
    """Tokens a model can attend over (learned table or trained rotary length); 0: no limit."""
    return cfg.max_positions if cfg.position == "learned" else (cfg.max_position_embeddings or 0)


BATCH_EXACT_UP_TO = 32  # batches up to this are never interpolated (dispatch thresholds sit below it)


class EngineCosts:
    """``IterationCosts`` from ``accelsim.simulate`` on ``build_model`` steps, cached by
    (phase, batch, length) with linear interpolation between bucket edges of ``bucket_tokens``."""

    def __init__(self, cfg, hardware, *, tp: int = 1, bucket_tokens: int = 64, batch_bucket: int = 8) -> None:
        for name, v in (("bucket_tokens", bucket_tokens), ("batch_bucket", batch_bucket)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise AccelsimError(f"must be an integer >= 0 (0: exact), got {v!r}", field=name)
        self.cfg, self.hardware, self.tp = cfg, hardware, tp
        self.bucket_tokens, self.batch_bucket = bucket_tokens, batch_bucket
        self._cache: dict[tuple[str, int, int], StepCost] = {}
        self.engine_calls = 0

    def _simulate(self, phase: str, batch: int, length: int) -> StepCost:
        key = (phase, batch, length)
        if key not in self._cache:
            from workloads.transformer import build_model

            kw = {"context": length} if phase == "decode" else {"seq": length}
            core = simulate(build_model(self.cfg, phase, batch=batch, tp=self.tp, **kw), self.hardware).core
            self.engine_calls += 1
            self._cache[key] = StepCost(core.total_s, core.flops, float(sum(core.offchip_bytes_by_role.values())))
        return self._cache[key]

    def _bucketed(self, phase: str, batch: int, length: float) -> StepCost:
        b = self.bucket_tokens
        exact = max(1, round(length))
        if b <= 1:
            return self._simulate(phase, batch, exact)
        lo = max(1, math.floor(length / b) * b)
        hi = lo + b if lo >= b else b  # below one bucket: the edges are 1 and b
        limit = position_limit(self.cfg)
        if length <= lo or (limit and hi >= limit):  # on an edge, or the upper edge past the model: exact
            return self._simulate(phase, batch, exact)
        return self._simulate(phase, batch, lo).lerp(self._simulate(phase, batch, hi), (length - lo) / (hi - lo))

    def decode(self, batch: int, kv_tokens_total: int) -> StepCost:
        context = kv_tokens_total / batch  # the same per-request KV at both batch edges
        g = self.batch_bucket
        if g <= 1 or batch <= BATCH_EXACT_UP_TO or batch % g == 0:
            return self._bucketed("decode", batch, context)
        lo = batch // g * g
        return self._bucketed("decode", lo, context).lerp(self._bucketed("decode", lo + g, context), (batch - lo) / g)

    def prefill(self, input_len: int) -> StepCost:
        return self._bucketed("prefill", 1, input_len)
