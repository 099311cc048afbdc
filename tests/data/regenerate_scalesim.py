"""Regenerate tests/data/scalesim_reference.csv: SCALE-Sim 3.0 full runs on small layers.

Needs SCALE-Sim in its own virtual environment (default /opt/scalesim-venv; numpy < 2.4):

    python tests/data/regenerate_scalesim.py [--venv /opt/scalesim-venv]

Every row is one complete SCALE-Sim layer simulation (compute and memory), run by
benchmarks/scalesim_runner.py as a subprocess. Layers are small and varied (GEMMs and
convolutions with strides, square and non-square arrays, all dataflows) and the SRAMs are small
and the bandwidth low so SCALE-Sim's memory model stalls; its stall-free cycle count is Total
Cycles minus Stall Cycles.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE.parents[1] / "benchmarks" / "scalesim_runner.py"

LAYERS = [
    {"name": "g_10x5x6", "kind": "gemm", "m": 10, "k": 5, "n": 6},
    {"name": "g_37x19x23", "kind": "gemm", "m": 37, "k": 19, "n": 23},
    {"name": "g_64x64x64", "kind": "gemm", "m": 64, "k": 64, "n": 64},
    {"name": "g_1x70x33", "kind": "gemm", "m": 1, "k": 70, "n": 33},
    {"name": "g_100x3x9", "kind": "gemm", "m": 100, "k": 3, "n": 9},
    {"name": "c_7x7_3x3_c2_f5_s2", "kind": "conv", "ifmap_h": 7, "ifmap_w": 7, "filter_h": 3, "filter_w": 3,
     "channels": 2, "filters": 5, "stride": 2},
    {"name": "c_12x10_3x3_c4_f8_s1", "kind": "conv", "ifmap_h": 12, "ifmap_w": 10, "filter_h": 3, "filter_w": 3,
     "channels": 4, "filters": 8, "stride": 1},
    {"name": "c_9x9_1x1_c16_f4_s1", "kind": "conv", "ifmap_h": 9, "ifmap_w": 9, "filter_h": 1, "filter_w": 1,
     "channels": 16, "filters": 4, "stride": 1},
    {"name": "c_11x11_5x5_c3_f7_s3", "kind": "conv", "ifmap_h": 11, "ifmap_w": 11, "filter_h": 5, "filter_w": 5,
     "channels": 3, "filters": 7, "stride": 3},
]
ARRAYS = [(4, 4), (8, 3), (5, 11), (16, 16)]
DATAFLOWS = ["os", "ws", "is"]
SRAM_KB = 1
BANDWIDTH_WORDS = 2
DIMS = ("m", "k", "n", "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "filters", "stride")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--venv", type=Path, default=Path("/opt/scalesim-venv"))
    args = parser.parse_args()
    rows = []
    for r, c in ARRAYS:
        for df in DATAFLOWS:
            spec = {"rows": r, "cols": c, "dataflow": df, "ifmap_kb": SRAM_KB, "filter_kb": SRAM_KB,
                    "ofmap_kb": SRAM_KB, "bandwidth": BANDWIDTH_WORDS, "layers": LAYERS}
            done = subprocess.run([str(args.venv / "bin" / "python"), str(RUNNER), json.dumps(spec)],
                                  capture_output=True, text=True, check=True)
            for layer, result in zip(LAYERS, json.loads(done.stdout.strip().splitlines()[-1])["layers"]):
                row = {"layer": layer["name"], "kind": layer["kind"], "rows": r, "cols": c, "dataflow": df}
                row.update({d: layer.get(d, "") for d in DIMS})
                row.update({k: v for k, v in result.items() if k not in ("name", "wall_s")})
                rows.append(row)
    out = HERE / "scalesim_reference.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
