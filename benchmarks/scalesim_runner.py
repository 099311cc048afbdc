"""Run SCALE-Sim 3.0 on one accelerator and a list of layers; print one JSON object.

This script runs INSIDE SCALE-Sim's own virtual environment (it needs numpy < 2.4), started as a
subprocess by ``benchmarks/systolic_vs_scalesim.py`` and ``tests/data/regenerate_scalesim.py``.
It imports nothing from accelsim, so the two tools stay independent.

Input (argv[1], JSON): {"rows", "cols", "dataflow", "ifmap_kb", "filter_kb", "ofmap_kb",
"bandwidth", "layers": [{"name", "kind": "gemm"|"conv", ...dims}]}. Output (stdout, last line):
{"layers": [{"name", "total_cycles_incl_prefetch", "total_cycles", "stall_cycles",
"overall_util_pct", "mapping_efficiency_pct", "compute_util_pct", "sram_ifmap_reads",
"sram_filter_reads", "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads",
"dram_ofmap_writes", "wall_s"}]}.

With ``"run": "compute"`` only SCALE-Sim's compute module runs (operand matrices, then the
demand matrices of its systolic_compute_{os,ws,is} class, one at a time and freed at once to
bound memory). That gives SCALE-Sim's own stall-free cycle count (demand lines - 1, which is
what its memory system reports as Total Cycles minus Stall Cycles; the full runs recorded in
tests/data confirm it), mapping efficiency and SRAM read/write counts, in seconds instead of
the hours its cycle-by-cycle memory simulation needs on large layers.
"""
import contextlib
import io
import json
import os
import sys
import tempfile
import time

CFG = """[general]
run_name = accelsim_check

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : {bandwidth}
Dataflow : {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bandwidth}
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bandwidth}
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def compute_only(config, topo, layout, name):
    from scalesim.compute.operand_matrix import operand_matrix
    from scalesim.compute.systolic_compute_is import systolic_compute_is
    from scalesim.compute.systolic_compute_os import systolic_compute_os
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws

    op = operand_matrix()
    op.set_params(config_obj=config, topoutil_obj=topo, layoututil_obj=layout, layer_id=0)
    _, ifmap = op.get_ifmap_matrix()
    _, filt = op.get_filter_matrix()
    _, ofmap = op.get_ofmap_matrix()
    df = config.get_dataflow()
    system = {"os": systolic_compute_os, "ws": systolic_compute_ws, "is": systolic_compute_is}[df]()
    if df == "ws":
        system.set_params(config_obj=config, ifmap_op_mat=ifmap, filter_op_mat=filt, ofmap_op_mat=ofmap,
                          sparsity_ratio_N=1, sparsity_ratio_M=1, ifmap_op_mat_original=ifmap,
                          sparsity_filter_array=None)
    else:
        system.set_params(config_obj=config, ifmap_op_mat=ifmap, filter_op_mat=filt, ofmap_op_mat=ofmap)
    lines = {}
    for part in ("ifmap", "filter", "ofmap"):
        getattr(system, f"create_{part}_demand_mat")()
        lines[part] = int(getattr(system, f"{part}_demand_matrix").shape[0])
        setattr(system, f"{part}_demand_matrix", None)
    assert len(set(lines.values())) == 1, lines
    system.demand_mat_ready_flag = True
    return {
        "name": name, "total_cycles": lines["ofmap"] - 1, "stall_cycles": 0,
        "mapping_efficiency_pct": float(system.get_avg_mapping_efficiency() * 100),
        "compute_util_pct": float(system.get_avg_compute_utilization() * 100),
        "sram_ifmap_reads": int(system.get_ifmap_requests()),
        "sram_filter_reads": int(system.get_filter_requests()),
        "sram_ofmap_writes": int(system.get_ofmap_requests()),
    }


def main() -> None:
    from scalesim.scale_config import scale_config
    from scalesim.topology_utils import topologies
    from scalesim.layout_utils import layouts
    from scalesim.single_layer_sim import single_layer_sim

    spec = json.loads(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="scalesim_")
    cfg_path = os.path.join(tmp, "run.cfg")
    with open(cfg_path, "w") as f:
        f.write(CFG.format(mode=spec.get("mode", "USER"), **{k: spec[k] for k in
                ("rows", "cols", "ifmap_kb", "filter_kb", "ofmap_kb", "bandwidth", "dataflow")}))
    results = []
    for layer in spec["layers"]:
        topo_path = os.path.join(tmp, "topo.csv")
        layout_path = os.path.join(tmp, "layout.csv")
        gemm = layer["kind"] == "gemm"
        with open(topo_path, "w") as f:
            if gemm:
                f.write("Layer, M, N, K,\n")
                f.write(f"{layer['name']}, {layer['m']}, {layer['n']}, {layer['k']},\n")
            else:
                f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                        "Num Filter, Strides,\n")
                f.write(f"{layer['name']}, {layer['ifmap_h']}, {layer['ifmap_w']}, {layer['filter_h']}, "
                        f"{layer['filter_w']}, {layer['channels']}, {layer['filters']}, {layer['stride']},\n")
        with open(layout_path, "w") as f:
            f.write("Layer name,\n")
        config = scale_config()
        config.read_conf_file(cfg_path)
        topo = topologies()
        topo.load_arrays(topofile=topo_path, mnk_inputs=gemm)
        topo.topo_calc_hyperparams(topo_path)
        layout = layouts()
        layout.load_arrays(layoutfile=layout_path, mnk_inputs=gemm)
        start = time.perf_counter()
        if spec.get("run") == "compute":
            with contextlib.redirect_stdout(io.StringIO()):
                results.append(compute_only(config, topo, layout, layer["name"]))
            results[-1]["wall_s"] = time.perf_counter() - start
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            sim = single_layer_sim()
            sim.set_params(layer_id=0, config_obj=config, topology_obj=topo, layout_obj=layout, verbose=False)
            sim.run()
            compute = sim.get_compute_report_items()
            detail = sim.get_detail_report_items()
        wall = time.perf_counter() - start
        results.append({
            "name": layer["name"],
            "total_cycles_incl_prefetch": int(compute[0]), "total_cycles": int(compute[1]),
            "stall_cycles": int(compute[2]), "overall_util_pct": float(compute[3]),
            "mapping_efficiency_pct": float(compute[4]), "compute_util_pct": float(compute[5]),
            "sram_ifmap_reads": int(detail[2]), "sram_filter_reads": int(detail[5]),
            "sram_ofmap_writes": int(detail[8]), "dram_ifmap_reads": int(detail[11]),
            "dram_filter_reads": int(detail[14]), "dram_ofmap_writes": int(detail[17]),
            "wall_s": wall,
        })
    print(json.dumps({"layers": results}))


if __name__ == "__main__":
    main()
