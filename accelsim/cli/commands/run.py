"""``accelsim run``: the built-in default example."""
from __future__ import annotations

from accelsim.cli import app, out
from accelsim.hardware import load_hardware
from workloads.examples import default_example


@app.command("run")
def run_command() -> None:
    """Describe the built-in default example: a transformer layer's GEMMs on the TPU-v1-like preset."""
    graph = default_example()
    hw = load_hardware("tpu-v1")
    out.print(f"workload {graph.name}: {len(graph)} GEMMs, {graph.flops / 1e9:.2f} GFLOP on {hw.name}")
    for e in graph.einsums:
        g = e.as_gemm()
        out.print(f"  {e.name:<10} M={g.m:<6} K={g.k:<6} N={g.n:<6} intensity={e.arithmetic_intensity:.1f} FLOP/B")
