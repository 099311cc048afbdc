"""``accelsim run``: the built-in default example, a whole model step by step on a systolic chip."""
from __future__ import annotations

from accelsim.cli import app, out

DEFAULT_MODEL = "llama-2-7b"
DEFAULT_HARDWARE = "tpu-v4"
DEFAULT_STEPS = (("decode", {"batch": 1, "context": 2048}), ("prefill", {"batch": 1, "seq": 512}))


@app.command("run")
def run_command() -> None:
    """Simulate the built-in default example: Llama-2-7B (fp16) one decode step (batch 1, context 2048) and one
    prefill (512 tokens) on the TPU-v4-like preset (8 weight-stationary 128x128 arrays, a vector unit, HBM), with
    every operator costed (GEMMs on the arrays, norms/softmax/activations on the vector unit, DMA overlapped)."""
    from accelsim.cli.model_run import build_workload, print_model_report
    from accelsim.hardware import load_hardware
    from accelsim.simulate import simulate

    hw = load_hardware(DEFAULT_HARDWARE)
    for i, (phase, sizes) in enumerate(DEFAULT_STEPS):
        workload, run = build_workload(DEFAULT_MODEL, phase, **sizes)
        if i:
            out.print()
        print_model_report(simulate(workload, hw), run, out, top=6)
