"""Run ZigZag on a list of layers and write what it found to a JSON file (not to stdout).

Why a separate script: ZigZag (``zigzag-dse``) is an optional extra installed in its own
virtual environment by ``benchmarks/tiling_vs_zigzag.py``; this script runs *inside* that
environment, imports nothing from accelsim, and talks back only through ``--result`` (ZigZag
logs freely to stdout and stderr, which the caller discards).

    <zigzag-venv>/bin/python benchmarks/zigzag_driver.py --job job.json --result result.json

``job.json``: ``{"hardware": path, "mapping": path, "dump_dir": path, "lpf_limit": int,
"layers": [{"name": str, "opt": "latency"|"energy"|"EDP", "layer": <one ZigZag workload layer>}]}``.
``result.json``: ``{"zigzag_version": str, "rows": [...]}``, one row per job layer with its
energy (pJ), latency (cycles, ZigZag's ``latency_total2``), word accesses per operand and level,
DRAM bytes per operand (word accesses at the level named ``dram`` times its port width) and the
CPU seconds of the search (this process and its children).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from importlib import metadata


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def dram_port_bits(hardware_path: str) -> int:
    """Width of the ``dram`` level's widest port (bits): ZigZag counts accesses of that width."""
    import yaml

    with open(hardware_path) as f:
        hw = yaml.safe_load(f)
    return max(int(p["bandwidth_max"]) for p in hw["memories"]["dram"]["ports"])


def run_layer(job: dict, item: dict, port_bits: int) -> dict:
    from zigzag.api import get_hardware_performance_zigzag

    dump = os.path.join(job["dump_dir"], f"{item['name']}-{item['opt']}")
    start_cpu, start_wall = cpu_s(), time.perf_counter()
    energy, latency, cmes = get_hardware_performance_zigzag(
        [item["layer"]], job["hardware"], job["mapping"], opt=item["opt"], dump_folder=dump,
        lpf_limit=int(job.get("lpf_limit", 6)), loma_show_progress_bar=False)
    search_cpu_s, search_wall_s = cpu_s() - start_cpu, time.perf_counter() - start_wall
    cme = cmes[0][1][0][0]  # the layer's own evaluation inside the cumulative one
    rep = cme.__jsonrepr__()["outputs"]
    accesses = rep["memory"]["word_accesses"]
    levels = {op: [lv.name for lv in cme.accelerator.memory_hierarchy.get_memory_levels(
        mem_op=cme.memory_operand_links.layer_to_mem_op(op))] for op in cme.layer.layer_operands}
    dram_bytes = {}
    for op, names in levels.items():
        key = str(op)
        if "dram" in names:
            counts = accesses[key][names.index("dram")]
            dram_bytes[key] = sum(counts.values()) * port_bits / 8
    return {"name": item["name"], "opt": item["opt"], "energy_pj": float(energy), "latency_cycles": float(latency),
            "mac_energy_pj": float(rep["energy"]["operational_energy"]),
            "energy_by_level_pj": rep["energy"]["memory_energy_breakdown_per_level"],
            "latency_parts_cycles": rep["latency"], "ideal_cycles": float(cme.ideal_cycle),
            "word_accesses": accesses, "levels": {str(k): v for k, v in levels.items()},
            "dram_bytes": dram_bytes, "temporal_mapping": str(cme.temporal_mapping),
            "spatial_mapping": str(cme.spatial_mapping), "search_cpu_s": search_cpu_s,
            "search_wall_s": search_wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", required=True, help="job JSON written by tiling_vs_zigzag.py")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    port_bits = dram_port_bits(job["hardware"])
    rows = []
    for item in job["layers"]:
        try:
            rows.append(run_layer(job, item, port_bits))
        except Exception as err:  # noqa: BLE001 -- one failing layer must not lose the others' results
            rows.append({"name": item["name"], "opt": item["opt"], "error": f"{type(err).__name__}: {err}"})
        with open(args.result, "w") as f:  # rewritten after every layer: a time-out keeps what finished
            json.dump({"zigzag_version": metadata.version("zigzag-dse"), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
