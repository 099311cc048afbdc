"""``accelsim serve``: a request trace served with continuous batching on any hardware preset."""
from __future__ import annotations

import typer

from accelsim.cli import app, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError


def _length(text: str, field: str) -> int | tuple[int, int]:
    """``N`` or ``LO:HI`` (uniform integers, inclusive)."""
    lo, sep, hi = text.partition(":")
    try:
        return (int(lo), int(hi)) if sep else int(lo)
    except ValueError:
        raise AccelsimError(f"must be N or LO:HI (integers), got {text!r}", field=field) from None


@app.command("serve")
def serve_command(
    model: str = typer.Option(..., help="Zoo model name or ModelConfig YAML."),
    device: str = typer.Option(..., "--hardware", "--device", help="Any hardware preset (accelsim hardware list) or YAML path."),
    requests: int = typer.Option(100, help="Requests in the trace."),
    rate: float = typer.Option(None, help="Poisson arrival rate, requests/s (default: all arrive at t = 0)."),
    batch_limit: int = typer.Option(32, help="Most requests in a batch."),
    input_len: str = typer.Option("512", help="Prompt tokens per request: N, or LO:HI drawn uniformly."),
    output_len: str = typer.Option("128", help="Generated tokens per request: N, or LO:HI drawn uniformly."),
    seed: int = typer.Option(0, help="Seed of the trace (arrivals and lengths)."),
    policy: str = typer.Option("continuous", help="continuous (iteration-level) or static (request-level) batching."),
    tp: int = typer.Option(1, help="Tensor-parallel degree (the graph of one device)."),
    bucket_tokens: int = typer.Option(64, help="Length bucket of the iteration-cost cache (0: simulate every length)."),
    batch_bucket: int = typer.Option(8, help="Batch bucket above 32 requests (0: simulate every batch size)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Serve a seeded trace: prefill-prioritised continuous batching, iteration costs from the engine.

    Prints throughput, time to first token, time between tokens and request latency, and per
    batch size reached the decode step's arithmetic intensity (FLOPs per off-chip byte)."""
    from accelsim.hardware import load_hardware
    from workloads.models import load_model
    from workloads.serving import serve
    from workloads.serving_trace import make_trace

    if tp < 1:
        raise AccelsimError(f"must be >= 1, got {tp}", field="tp")
    hw = load_hardware(device)
    cfg = load_model(model)
    trace = make_trace(requests, input_len=_length(input_len, "input-len"), output_len=_length(output_len, "output-len"),
                       rate_per_s=rate, seed=seed)
    res = serve(trace, cfg=cfg, hardware=hw, batch_limit=batch_limit, policy=policy, tp=tp, bucket_tokens=bucket_tokens,
                batch_bucket=batch_bucket)
    s = res.summary()
    points = [p.__dict__ for p in res.batch_points()]
    if as_json:
        doc = {"model": cfg.name, "device": hw.name, "kind": hw.kind, "policy": policy, "batch_limit": batch_limit,
               "rate_per_s": rate, "input_len": input_len, "output_len": output_len, "seed": seed, "tp": tp,
               "bucket_tokens": bucket_tokens, "batch_bucket": batch_bucket, **s, "batch_points": points}
        out.print(dumps_json(doc, indent=2), markup=False, highlight=False)
        return
    ms = {k: {q: 1e3 * v for q, v in s[k].items()} for k in ("ttft_s", "tbt_s", "latency_s")}
    head = (f"{cfg.name} on {hw.name} ({hw.kind}), {policy} batching, limit {batch_limit}: {s['requests']} requests, "
            f"{s['tokens']} tokens in {s['makespan_s']:.3f} s = {s['tokens_per_s']:.1f} tokens/s")
    lines = [head] + [f"  {label:20} mean {ms[k]['mean']:.3f} ms  p50 {ms[k]['p50']:.3f}  p99 {ms[k]['p99']:.3f}"
                      for label, k in (("time to first token", "ttft_s"), ("time between tokens", "tbt_s"),
                                       ("request latency", "latency_s"))]
    if s["kv_capacity_tokens"] is not None:
        lines.append(f"  KV admission: {s['kv_capacity_tokens']} tokens fit beside the weights; "
                     f"{s['rejected']} requests rejected, {s['queued_for_memory']} queued for memory")
    lines += [(f"  iterations: {s['iterations']['prefill']} prefill, {s['iterations']['decode']} decode; "
               f"{s['engine_calls']} engine calls"),
              "  decode batch  steps  mean ctx  step ms  FLOP/B"]
    lines += [f"  {p['batch']:12} {p['steps']:6} {p['mean_context']:9.0f} {1e3 * p['mean_step_s']:8.3f} "
              f"{p['flops_per_byte']:7.2f}" for p in points]
    out.print("\n".join(lines), markup=False, highlight=False)
