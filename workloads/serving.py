"""A small decode serving loop on any hardware: one batch generating ``output_len`` tokens.

Why in ``workloads``: it builds a decode step per context length and runs it through
``accelsim.simulate``, so it works on every engine (GPU roofline, systolic, PIM, mesh) and the
simulator core never imports a workload builder.

Why sampled: a decode step's latency changes only through the KV length, smoothly (more KV rows
per step), so the step latency is simulated at ``samples`` context lengths spread over the run
and the steps in between are interpolated linearly; with ``samples >= output_len`` every step is
simulated and the loop is exact. Static batching (all requests start and end together); arrival
processes and continuous batching are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import AccelsimError
from accelsim.simulate import simulate


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
