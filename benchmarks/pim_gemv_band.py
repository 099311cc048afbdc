"""GEMV bandwidth utilisation on GDDR6-AiM (CENT's device) against the all-bank peak.

The issue's check: CENT's GDDR6-PIM blocks run at about 12-17% of the all-bank peak "because of row
activations and buffer refills". This script derives the utilisation from the command stream
(``accelsim.engines.pim.gb_gemv``: WRGB refills, all-bank MACs, RDMAC read-outs, row switches,
refresh, all with aim_simulator's timings) for the weight GEMVs of Llama-2-7B/13B/70B decode at
batch 1, with and without the buffer commands, and prints the simple bounds the timings give:
a row of 64 MAC columns (128 tCK) costs tRTP + tRP + tRCDMAC = 100 tCK to switch, so at most
128 / 228 = 56% before refresh. Nothing is fitted to the band.

    PYTHONPATH=. python benchmarks/pim_gemv_band.py [--out DIR] [--write-results]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from accelsim import tables
from accelsim.engines.pim.gb_gemv import GbGemv, best_order
from accelsim.engines.pim.gemv import gemv_cycles
from accelsim.engines.pim.layout import map_gemv
from accelsim.hardware import load_hardware

ROOT = Path(__file__).resolve().parents[1]
CENT_BAND = (0.12, 0.17)  # issue 9 "Checks" (CENT's GDDR6-PIM blocks); no figure for it in PIM_WAFER.md
# (model, GEMV, k, n, tensor-parallel devices): Llama-2 shapes (workloads/zoo), 16 GB per device
SHAPES = [("llama-2-7b", "q/k/v/o", 4096, 4096, 1), ("llama-2-7b", "gate/up", 4096, 11008, 1),
          ("llama-2-7b", "down", 11008, 4096, 1), ("llama-2-7b", "lm_head", 4096, 32000, 1),
          ("llama-2-13b", "q/k/v/o", 5120, 5120, 2), ("llama-2-13b", "down", 13824, 5120, 2),
          ("llama-2-70b", "q", 8192, 8192, 9), ("llama-2-70b", "down", 28672, 8192, 9)]


def utilisation(k: int, n: int, tp: int, buffer: bool) -> tuple[float, str]:
    hw = load_hardware("gddr6-aim")
    std = hw.dram
    units = hw.total_channels * hw.banks_per_mac_command
    # tensor parallelism splits the output neurons over devices (column split)
    layout = map_gemv(k, math.ceil(n / tp), 2, units, std.row_bytes, std.access_bytes)
    tkey, okey = tuple(sorted(hw.timings().items())), tuple(sorted(std.organization.items()))
    if buffer:
        g = GbGemv(k, layout.neurons_per_unit_max, 2, hw.global_buffer_bytes, hw.mac_registers_per_bank,
                   std.row_bytes, std.access_bytes)
        order, cycles, _ = best_order(g, tkey, okey)
    else:
        commands = math.ceil(layout.unit_bytes * units / hw.total_channels / hw.mac_command_bytes)
        cycles, _ = gemv_cycles(hw.level, commands, std.columns_per_row, 1, tkey, okey)
        order = "-"
    seconds = cycles * std.tck_s
    matrix_bytes = k * math.ceil(n / tp) * 2
    return matrix_bytes / seconds / hw.internal_bytes_per_s, order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tables.add_output_options(ap, "pim_gemv_band")
    args = ap.parse_args()
    hw = load_hardware("gddr6-aim")
    t = hw.timings()
    row_cycles = hw.dram.columns_per_row * t["tCCDAB"]
    row_bound = row_cycles / (row_cycles + t["tRTPL"] + t["tRP"] + t["tRCDMAC"])
    rows = []
    for model, name, k, n, tp in SHAPES:
        with_gb, order = utilisation(k, n, tp, True)
        without, _ = utilisation(k, n, tp, False)
        rows.append(dict(model=model, gemv=name, k=k, n=n, tp=tp, utilisation_buffer=with_gb, order=order,
                         utilisation_resident_input=without, row_switch_bound=row_bound, cent_low=CENT_BAND[0], cent_high=CENT_BAND[1]))
    df = pd.DataFrame(rows)
    cols = ["model", "gemv", "k", "n", "tp", "utilisation_buffer", "order", "utilisation_resident_input",
            "row_switch_bound", "cent_low", "cent_high"]
    print(f"GDDR6-AiM all-bank peak {hw.internal_bytes_per_s / 1e12:.2f} TB/s per device; batch 1")
    print(tables.markdown_table(df, cols))
    note = ("\n\nUtilisation = matrix bytes / (simulated GEMV time x all-bank peak). 'buffer': WRGB refills and "
            "RDMAC read-outs in the command stream (CENT's 2 KB global buffer, 32 MAC registers per bank); "
            "'resident input': the same stream without them. The band CENT is said to reach (issue 9) is "
            f"{CENT_BAND[0]:.0%}-{CENT_BAND[1]:.0%}; the commands and timings modelled here give about half the "
            "peak, set by row switches (tRTP + tRP + tRCDMAC per 64-column row) and refresh, with refills hidden "
            "behind the row switches. The gap to the band is not explained by these commands.\n")
    for directory in tables.output_dirs(args, ROOT):
        df.to_csv(directory / "pim_gemv_band.csv", index=False)
        (directory / "pim_gemv_band.md").write_text(tables.markdown_table(df, cols) + note)


if __name__ == "__main__":
    main()
