"""``accelsim run``: the built-in default example, simulated on the TPU-v1-like preset."""
from __future__ import annotations

from accelsim.cli import app, out
from accelsim.cli.systolic_view import print_systolic_report
from accelsim.engines.systolic import simulate_graph
from accelsim.hardware import load_hardware
from workloads.examples import default_example


@app.command("run")
def run_command() -> None:
    """Simulate the built-in default example (a BERT-base encoder layer's four weight GEMMs, sequence 512,
    8-bit) on the TPU-v1-like 256x256 weight-stationary preset and print the per-layer report."""
    graph = default_example()
    hw = load_hardware("tpu-v1", kind="systolic")
    report = simulate_graph(graph, hw)
    print_systolic_report(report, out)
