"""A small decode serving loop on any hardware: one batch generating ``output_len`` tokens.

Why in ``workloads``: it builds a decode step per context length and runs it through
``accelsim.simulate``, so it works on every engine (GPU roofline, systolic, PIM, mesh) and the
simulator core never imports a workload builder.

Why sampled: a decode step's latency changes only through the KV length, smoothly (more KV rows
per step), so the step latency is simulated at ``samples`` context lengths spread over the run
and the steps in between are interpolated linearly; with ``samples >= output_len`` every step is
simulated and the loop is exact. Static batching (all requests start and end together).

``serve`` is the whole serving simulation: a request trace (``workloads.serving_trace``),
iteration-level continuous batching (``workloads.serving_loop``, policy documented there) and
cached, bucketed iteration costs from the engine (``workloads.serving_cost``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.simulate import simulate
from workloads.serving_cost import EngineCosts, IterationCosts, position_limit
from workloads.serving_loop import Iteration, RequestRecord, run_schedule
from workloads.serving_memory import kv_budget
from workloads.serving_trace import Request


@dataclass(frozen=True)
class DecodeRun:
    total_s: float
    tokens: int
    step_contexts: tuple[int, ...]
    step_latency_s: tuple[float, ...]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_s


def decode_run(cfg, device, batch: int, prompt_len: int, output_len: int, samples: int = 8, tp: int = 1) -> DecodeRun:
    """``output_len`` decode steps of a batch of ``batch`` requests with ``prompt_len`` tokens cached."""
    from workloads.transformer import build_model

    for name, v in (("batch", batch), ("prompt_len", prompt_len), ("output_len", output_len), ("samples", samples)):
        if not isinstance(v, int) or v < 1:
            raise AccelsimError(f"must be an integer >= 1, got {v!r}", field=name)
    steps = list(range(output_len))  # step i decodes with prompt_len + i cached tokens
    n = min(samples, output_len)
    picks = sorted({round(i * (output_len - 1) / (n - 1)) for i in range(n)}) if n > 1 else [0]
    lat = {i: simulate(build_model(cfg, "decode", batch=batch, context=prompt_len + i, tp=tp),
                       device).core.total_s for i in picks}
    total = 0.0
    for i in steps:
        if i in lat:
            total += lat[i]
            continue
        lo = max(p for p in picks if p < i)
        hi = min(p for p in picks if p > i)
        total += lat[lo] + (lat[hi] - lat[lo]) * (i - lo) / (hi - lo)
    return DecodeRun(total, batch * output_len, tuple(prompt_len + p for p in picks), tuple(lat[p] for p in picks))


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not len(values):
        return {"mean": float("nan"), "p50": float("nan"), "p99": float("nan")}
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


@dataclass(frozen=True)
class BatchPoint:
    """The decode steps a run made at one batch size: how many, their mean KV length per request,
    mean latency, and arithmetic intensity (FLOPs per off-chip byte, from the Report core)."""

    batch: int
    steps: int
    mean_context: float
    mean_step_s: float
    flops_per_byte: float


@dataclass(frozen=True)
class ServingResult:
    records: tuple[RequestRecord, ...]
    iterations: tuple[Iteration, ...]
    engine_calls: int | None = None
    kv_capacity_tokens: int | None = None  # None: admission not limited by memory

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.records)

    @property
    def served(self) -> tuple[RequestRecord, ...]:
        return tuple(r for r in self.records if not r.rejected)

    @property
    def makespan_s(self) -> float:
        """From the first arrival to the last token of the requests that were served."""
        served = self.served
        if not served:
            return float("nan")
        return max(r.finish_s for r in served) - min(r.request.arrival_s for r in served)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.makespan_s if self.served else 0.0

    def summary(self) -> dict[str, object]:
        served = self.served
        gaps = [g for r in served for g in r.gaps_s]
        return {"requests": len(self.records), "tokens": self.tokens, "makespan_s": self.makespan_s,
                "tokens_per_s": self.tokens_per_s,
                "rejected": sum(r.rejected for r in self.records),
                "queued_for_memory": sum(r.waited_for_memory for r in self.records),
                "kv_capacity_tokens": self.kv_capacity_tokens,
                "ttft_s": _stats([r.ttft_s for r in served]), "tbt_s": _stats(gaps),
                "latency_s": _stats([r.latency_s for r in served]),
                "iterations": {p: sum(1 for it in self.iterations if it.phase == p) for p in ("prefill", "decode")},
                "engine_calls": self.engine_calls}

    def batch_points(self) -> list[BatchPoint]:
        by: dict[int, list[Iteration]] = {}
        for it in self.iterations:
            if it.phase == "decode":
                by.setdefault(it.batch, []).append(it)
        return [BatchPoint(b, len(its), sum(i.kv_tokens_total for i in its) / (b * len(its)),
                           sum(i.latency_s for i in its) / len(its),
                           sum(i.flops for i in its) / sum(i.offchip_bytes for i in its))
                for b, its in sorted(by.items())]


def serve(requests: Sequence[Request], costs: IterationCosts | None = None, *, cfg=None, hardware=None,
          batch_limit: int = 32, policy: str = "continuous", tp: int = 1, bucket_tokens: int = 64,
          batch_bucket: int = 8, kv_capacity_tokens: int | None = None, kv_admission: bool = True) -> ServingResult:
    """Serve ``requests`` on ``hardware`` running model ``cfg`` (or on any ``costs`` object).

    With a model and hardware and ``kv_admission``, requests are admitted only while their KV caches
    fit the memory the weights leave (``workloads.serving_memory``); ``kv_capacity_tokens`` sets
    that budget directly (for any ``costs``)."""
    if kv_capacity_tokens is None and kv_admission and cfg is not None and hardware is not None:
        budget = kv_budget(cfg, hardware, tp=tp)
        kv_capacity_tokens = budget.tokens if budget is not None else None
    if costs is None:
        if cfg is None or hardware is None:
            raise AccelsimError("serve needs a model and a hardware preset (or an IterationCosts)", field="hardware")
        limit = position_limit(cfg)
        longest = max(requests, key=lambda r: r.input_len + r.output_len) if requests else None
        if limit and longest is not None and longest.input_len + longest.output_len - 1 > limit:
            raise AccelsimError(f"request {longest.rid} needs {longest.input_len} prompt + {longest.output_len} output "
                                f"tokens, {cfg.name} attends over at most {limit} (prompt + output - 1 <= {limit})",
                                field="output_len", allowed=f"input_len + output_len <= {limit + 1}")
        costs = EngineCosts(cfg, hardware, tp=tp, bucket_tokens=bucket_tokens, batch_bucket=batch_bucket)
    records, iterations = run_schedule(requests, costs, batch_limit=batch_limit, policy=policy,
                                       kv_capacity_tokens=kv_capacity_tokens)
    return ServingResult(tuple(records), tuple(iterations), getattr(costs, "engine_calls", None), kv_capacity_tokens)
