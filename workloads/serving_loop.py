"""Iteration-level serving simulation (continuous batching) on any engine.

Policy (prefill-prioritised iteration-level scheduling, as Orca (OSDI'22) and vLLM's default
scheduler): at each iteration boundary, requests that finished leave the batch; arrived requests
wait in FIFO order and are admitted while the batch holds fewer than ``batch_limit`` requests.
If any were admitted, the iteration is a *prefill* iteration: their prompts are processed one
after another (each prefill is simulated at batch 1, so no prompt is padded to another's length;
prefill of hundreds of tokens is compute-bound, so batching prompts would gain little) while
the running requests wait; each admitted request's first token comes out at the end of it.
Otherwise the iteration is one *decode* step of every running request (one token each).
``policy="static"`` is request-level batching for comparison: a batch is admitted only when the
previous one has wholly finished, and it keeps its size until its longest request is done (the
finished ones are padding: computed, their tokens discarded), as a static-shape server does.

KV-cache capacity (``kv_capacity_tokens``, from ``workloads.serving_memory``): a request is
admitted only if its final KV length (prompt + output - 1) fits beside the reservations of the
running requests; if not, it and everything behind it wait (FIFO, no overtaking); a request that
would not fit even alone is rejected (``RequestRecord.rejected``) and never runs.
Not modelled: preemption by swap or recompute (vLLM's block manager), chunked prefill (Sarathi), prefix caching, speculative decoding, and more than one device
serving (tensor parallelism is the ``tp`` graph of one device).

Why a plain event loop and not simpy: with one device the only events are iteration ends and
arrivals, and the next event is always "the current iteration ends" or "the next arrival when
idle"; a loop over iterations is that simulation with nothing hidden.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from accelsim.errors import AccelsimError
from workloads.serving_cost import IterationCosts
from workloads.serving_trace import Request

POLICIES = ("continuous", "static")


@dataclass
class RequestRecord:
    """What happened to one request (times in seconds from t = 0)."""

    request: Request
    first_token_s: float = float("nan")
    finish_s: float = float("nan")
    tokens: int = 0
    gaps_s: list[float] = field(default_factory=list)  # time between consecutive tokens
    rejected: bool = False  # its KV cache can never fit the device
    waited_for_memory: bool = False  # it had arrived and a batch slot was free, but its KV did not fit

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.request.arrival_s

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.request.arrival_s


@dataclass(frozen=True)
class Iteration:
    phase: str  # "prefill" or "decode"
    start_s: float
    latency_s: float
    batch: int  # requests processed (prefill: prompts; decode: batch, padding included)
    kv_tokens_total: int  # decode: KV tokens the step read; prefill: prompt tokens
    flops: float
    offchip_bytes: float


@dataclass(frozen=True)
class _Running:
    record: RequestRecord
    kv_tokens: int  # tokens whose K/V are cached before the next decode step


def kv_need(r: Request) -> int:
    """KV tokens a request holds at its last decode step."""
    return r.input_len + r.output_len - 1


def run_schedule(requests: Sequence[Request], costs: IterationCosts, *, batch_limit: int,
                 policy: str = "continuous", kv_capacity_tokens: int | None = None,
                 ) -> tuple[list[RequestRecord], list[Iteration]]:
    """Simulate the trace; returns one record per request (in ``rid`` order) and every iteration."""
    if not isinstance(batch_limit, int) or isinstance(batch_limit, bool) or batch_limit < 1:
        raise AccelsimError(f"must be an integer >= 1, got {batch_limit!r}", field="batch_limit")
    if policy not in POLICIES:
        raise AccelsimError(f"unknown scheduling policy {policy!r}", field="policy", allowed=list(POLICIES))
    if not requests:
        raise AccelsimError("a trace needs at least one request", field="requests")
    if kv_capacity_tokens is not None and (not isinstance(kv_capacity_tokens, int) or kv_capacity_tokens < 0):
        raise AccelsimError(f"must be an integer >= 0, got {kv_capacity_tokens!r}", field="kv_capacity_tokens")
    records = {r.rid: RequestRecord(r) for r in requests}
    ordered = sorted(requests, key=lambda r: (r.arrival_s, r.rid))
    if kv_capacity_tokens is not None:
        for r in ordered:
            records[r.rid].rejected = kv_need(r) > kv_capacity_tokens
    waiting = deque(r for r in ordered if not records[r.rid].rejected)
    running: list[_Running] = []
    iterations: list[Iteration] = []
    t = 0.0
    unfinished = len(waiting)
    while unfinished:
        live = sum(1 for x in running if x.record.tokens < x.record.request.output_len)
        can_admit = batch_limit - len(running) if policy == "continuous" else (batch_limit if live == 0 else 0)
        if policy == "static" and live == 0:
            running = []
        admit = []
        reserved = sum(kv_need(x.record.request) for x in running if x.record.tokens < x.record.request.output_len)
        while waiting and len(admit) < can_admit and waiting[0].arrival_s <= t:
            if kv_capacity_tokens is not None and reserved + kv_need(waiting[0]) > kv_capacity_tokens:
                records[waiting[0].rid].waited_for_memory = True
                break
            reserved += kv_need(waiting[0])
            admit.append(waiting.popleft())
        if admit:
            costs_each = [costs.prefill(r.input_len) for r in admit]
            dt = sum(c.latency_s for c in costs_each)
            iterations.append(Iteration("prefill", t, dt, len(admit), sum(r.input_len for r in admit),
                                        sum(c.flops for c in costs_each), sum(c.offchip_bytes for c in costs_each)))
            t += dt
            for r in admit:
                rec = records[r.rid]
                rec.first_token_s, rec.tokens = t, 1
                if rec.tokens == r.output_len:
                    rec.finish_s = t
                    unfinished -= 1
                    if policy == "continuous":
                        continue
                running.append(_Running(rec, r.input_len))
        elif live:
            kv = sum(x.kv_tokens for x in running)
            c = costs.decode(len(running), kv)
            iterations.append(Iteration("decode", t, c.latency_s, len(running), kv, c.flops, c.offchip_bytes))
            t += c.latency_s
            still = []
            for x in running:
                rec = x.record
                if rec.tokens < rec.request.output_len:
                    rec.gaps_s.append(t - (rec.first_token_s if rec.tokens == 1 else rec.finish_s))
                    rec.tokens += 1
                    rec.finish_s = t  # the time of the latest token until the request is done
                    if rec.tokens == rec.request.output_len:
                        unfinished -= 1
                        if policy == "continuous":
                            continue
                still.append(_Running(rec, x.kv_tokens + 1))
            running = still
        else:  # idle: jump to the next arrival
            running = [] if policy == "static" else running
            if waiting[0].arrival_s <= t:  # cannot happen: with nothing running, any kept request fits
                raise AccelsimError(f"request {waiting[0].rid} cannot be admitted on an idle device",
                                    field="kv_capacity_tokens")
            t = max(t, waiting[0].arrival_s)
    return [records[r.rid] for r in sorted(requests, key=lambda r: r.rid)], iterations
