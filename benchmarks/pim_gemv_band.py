"""GEMV bandwidth utilisation on GDDR6-AiM (CENT's device) against the all-bank peak.

The issue's check: CENT's GDDR6-PIM blocks run at about 12-17% of the all-bank peak "because of row
activations and buffer refills". This script derives the utilisation from the command stream
(``accelsim.engines.pim.gb_gemv``: WRGB refills, all-bank MACs, RDMAC read-outs, row switches,
refresh, all with aim_simulator's timings) for the weight GEMVs of Llama-2-7B/13B/70B decode at
batch 1, with and without the buffer commands, and prints the simple bounds the timings give:
a row of 64 MAC columns (128 tCK) costs tRTP + tRP + tRCDMAC = 100 tCK to switch, so at most
128 / 228 = 56% before refresh. Nothing is fitted to the band.

Second table: one Llama-2-13B block's GEMVs per device at CENT's tensor-parallel degrees, against
the PIM time CENT's own artifact recorded for that block (simulation_results.csv): CENT's
utilisation is 44% at tp 1 and 16% at tp 10, so its band is where its mapping leaves little work
per device; the near-constant per-block time CENT has beyond our GEMV streams is reported.

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


# CENT's own simulated PIM time per Llama-2-13B transformer block, seqlen 128, 20 devices of 32 channels,
# by tensor-parallel degree (pipeline x tensor = 20): Yufeng98/CENT cent_simulation/simulation_results.csv
# (commit 863bd7d), column "PIM latency" in ms (rows Llama2-13B,20,PP,TP,32,32,128)
CENT_13B_BLOCK_MS = {1: 0.088245, 2: 0.0531435, 5: 0.0319465, 10: 0.0244845, 20: 0.0232955}
GEMVS_13B = [(5120, 5120)] * 4 + [(5120, 13824)] * 2 + [(13824, 5120)]  # q, k, v, o; gate, up; down


def cent_block_rows() -> list[dict]:
    """Our GEMV time for one 13B block's share per device (every GEMV's neurons dealt over the tp
    devices' banks, CENT's model-parallel FC layout) against CENT's recorded PIM time for it."""
    hw = load_hardware("gddr6-aim")
    std = hw.dram
    tkey, okey = tuple(sorted(hw.timings().items())), tuple(sorted(std.organization.items()))
    units = hw.total_channels * hw.banks_per_mac_command
    rows = []
    for tp, cent_ms in CENT_13B_BLOCK_MS.items():
        ours_s = 0.0
        for k, n in GEMVS_13B:
            g = GbGemv(k, math.ceil(n / (tp * units)), 2, hw.global_buffer_bytes, hw.mac_registers_per_bank,
                       std.row_bytes, std.access_bytes)
            ours_s += best_order(g, tkey, okey)[1] * std.tck_s
        nbytes = sum(k * n for k, n in GEMVS_13B) * 2 / tp
        rows.append(dict(tp=tp, ours_gemv_ms=ours_s * 1e3, cent_pim_ms=cent_ms, ours_over_cent=ours_s * 1e3 / cent_ms,
                         cent_minus_ours_us=(cent_ms - ours_s * 1e3) * 1e3,
                         utilisation_ours=nbytes / ours_s / hw.internal_bytes_per_s,
                         utilisation_cent=nbytes / (cent_ms * 1e-3) / hw.internal_bytes_per_s))
    return rows


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
            "behind the row switches.\n")
    cent = pd.DataFrame(cent_block_rows())
    cent_cols = list(cent.columns)
    print("\nLlama-2-13B block per device, seqlen 128: our GEMV time vs CENT's recorded PIM time")
    print(tables.markdown_table(cent, cent_cols))
    cent_note = ("\n\nCENT's utilisation (its PIM time, weight bytes per device) falls from 44% at tp 1 to 8% at tp 20 and "
                 "is 16% at tp 10: its 12-17% band is a property of the mapping (little work per device), not of the "
                 "GEMV stream. Our GEMV streams alone run 14% faster than CENT at tp 1; CENT spends a near-constant "
                 "13-16 us more per block at every degree (attention at seqlen 128, per-GEMV instruction overheads "
                 "and synchronisation that are not in our GEMV stream), which dominates when the per-device GEMVs "
                 "are short.\n")
    for directory in tables.output_dirs(args, ROOT):
        df.to_csv(directory / "pim_gemv_band.csv", index=False)
        cent.to_csv(directory / "pim_gemv_band_cent.csv", index=False)
        (directory / "pim_gemv_band.md").write_text(tables.markdown_table(df, cols) + note + "\n"
                                                    + tables.markdown_table(cent, cent_cols) + cent_note)


if __name__ == "__main__":
    main()
