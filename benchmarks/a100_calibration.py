"""The a100-cores preset's two achievable fractions, derived from the development sample only.

The data owner allows "the few documented device constants" to be set from the development sample
(/work/shared/reference/a100: the M = 8192 GEMM sweep and the 1-D GELU sweep); every other measured
A100 row (softmax, layer norm, all-reduce, the GPT-3 layers) only checks. Each fraction is what the
real kernels achieved of what the model at the datasheet peaks predicts, launch excluded, pooled
over the largest rows of its sweep (where the launch is a few per cent of the time, so its constant
hardly matters):

    efficiency = sum(predicted_at_peak_s - launch_s) / sum(measured_s - launch_s)

* ``compute_efficiency`` from the ``LARGEST`` largest GEMMs (N = K = 8192, 16384, 32768, which the
  model finds compute-bound: the time at peak is the arrays' time, waves of 108 SMs included);
* ``memory_efficiency`` from the ``LARGEST`` largest GELUs (2^27 .. 2^29 elements, read once and
  written once, memory-bound: the time at peak is bytes over 2.039 TB/s).

Every development row has about half its DRAM bytes written (GELU exactly half, the small GEMMs
45-50 %), so the sample cannot tell a read efficiency from a write efficiency: one memory fraction
applied to all bytes is all it supports.

    python benchmarks/a100_calibration.py   # print the derivation
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.hardware import load_hardware
from accelsim.hardware.multicore import MulticoreAccelerator
from accelsim.simulate import simulate
from benchmarks.a100_operators import HARDWARE, gelu_graph, gemm_graph, load_reference

LARGEST = 3  # rows of each sweep the fraction is pooled over


def at_peak(hw: MulticoreAccelerator) -> MulticoreAccelerator:
    """The spec with both fractions at 1.0 (the datasheet peaks)."""
    return type(hw).model_validate({**hw.model_dump(), "compute_efficiency": 1.0, "memory_efficiency": 1.0})


def pooled_fraction(measured_s: list[float], predicted_at_peak_s: list[float], launch_s: float) -> float:
    """Model work time at the peaks over measured work time, launch taken out of both."""
    return sum(p - launch_s for p in predicted_at_peak_s) / sum(m - launch_s for m in measured_s)


def derive(time_limit_s: float = 20.0) -> dict[str, dict]:
    """Both fractions with the rows and bounds they come from."""
    peak = at_peak(load_hardware(HARDWARE))
    launch_s = peak.launch_overhead_s
    gemms, gelus = load_reference()
    out = {}
    for name, rows, graph_of, size_of in (
            ("compute_efficiency", gemms, lambda r: gemm_graph(r["m"], r["k"], r["n"]),
             lambda r: r["m"] * r["k"] * r["n"]),
            ("memory_efficiency", gelus, lambda r: gelu_graph(r["elements"]), lambda r: r["elements"])):
        picked = sorted(rows, key=size_of)[-LARGEST:]
        reports = [simulate(graph_of(r), peak, time_limit_s=time_limit_s) for r in picked]
        predicted = [rep.core.total_s for rep in reports]
        measured = [r["measured_s"] for r in picked]
        out[name] = {"value": pooled_fraction(measured, predicted, launch_s), "rows": picked,
                     "predicted_at_peak_s": predicted, "bounds": [rep.layers[0]["bound"] for rep in reports]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=20.0, help="tiling search limit per GEMM (s)")
    args = parser.parse_args(argv)
    preset = load_hardware(HARDWARE)
    for name, d in derive(args.time_limit).items():
        print(f"{name}: derived {d['value']:.4f}, preset {getattr(preset, name)}")
        for r, p, b in zip(d["rows"], d["predicted_at_peak_s"], d["bounds"]):
            shape = {k: v for k, v in r.items() if k != "measured_s"}
            print(f"  {shape}: measured {r['measured_s'] * 1e3:.4g} ms, at peak {p * 1e3:.4g} ms ({b})")


if __name__ == "__main__":
    main()
