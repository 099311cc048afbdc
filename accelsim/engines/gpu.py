"""The ``gpu`` kind's engine: the roofline (``accelsim.engines.roofline``) behind the interface.

Why a thin wrapper: the roofline is the reference every other engine is compared with, so its
numbers must not change; this only restates its totals in the Report core's vocabulary (busy
time per bound as units ``compute``, ``memory`` and ``link``; HBM is the ``dram`` level).
"""
from __future__ import annotations

from typing import Any

from accelsim.engines.registry import Problem, register_engine
from accelsim.engines.roofline import einsum_traffic, roofline
from accelsim.errors import AccelsimError
from accelsim.ir import Graph, OpKind, parts_of
from accelsim.report import Report, Totals


def _parts(workload: Any) -> list[tuple[Graph, int]]:
    return [(p.graph, p.repeat) for p in parts_of(workload)]


class RooflineEngine:
    kind = "gpu"
    metrics = {"comm_bytes": "float64", "resident_bytes": "float64", "fits_memory": "bool",
               "dram_bytes_per_s": "float64"}
    options: tuple[str, ...] = ()

    def check(self, workload: Any, hardware: Any, mapping: Any, **options: Any) -> list[Problem]:
        found = []
        if mapping is not None:
            found.append(Problem("mapping", "the roofline replays no mapping", "no mapping"))
        needs_links = any(e.op is OpKind.ALLREDUCE and e.attrs.get("collective_bytes")
                          for g, _ in _parts(workload) for e in g.einsums)
        if needs_links and hardware.interconnect_bytes_per_s is None:
            found.append(Problem("interconnect_bytes_per_s", f"{hardware.name} has no interconnect bandwidth for "
                                 "the all-reduces of tensor parallelism", "a device with interconnect_bytes_per_s"))
        return found

    def simulate(self, workload: Any, hardware: Any, mapping: Any = None, **options: Any) -> Report:
        if options:  # the roofline has no schedule to overlap and no timeline to keep
            raise AccelsimError(f"unknown options {sorted(options)} for the gpu roofline", field="options",
                                allowed="none")
        report = roofline(workload, hardware)
        reads = writes = macs = 0.0
        for graph, repeat in _parts(workload):
            for e in graph.einsums:
                traffic = einsum_traffic(e)
                out = traffic.get(e.output.tensor.name, 0.0)
                reads += (sum(traffic.values()) - out) * repeat
                writes += out * repeat
                if e.op is OpKind.MAC:
                    macs += e.points * float(e.attrs.get("flop_fraction", 1.0)) * repeat
        t = report.totals
        busy = {"compute": sum(r["compute_s"] for r in report.layers),
                "memory": sum(r["memory_s"] for r in report.layers),
                "link": sum(r["comm_s"] for r in report.layers)}
        mem = hardware.memory
        energy = {"compute": None,  # the gpu presets give no energy per FLOP
                  "dram_read": reads * mem.read_energy_pj_per_byte if mem.read_energy_pj_per_byte > 0 else None,
                  "dram_write": writes * mem.write_energy_pj_per_byte if mem.write_energy_pj_per_byte > 0 else None}
        core = Totals(total_s=t["total_s"], total_cycles=None, macs=macs, flops=t["flops"], energy_pj_by_component=energy,
                      read_bytes={"dram": reads}, write_bytes={"dram": writes},
                      offchip_bytes_by_role=dict(t["bytes_by_role"]), busy_s=busy)
        report.core = core
        report.totals = {**t, **core.flat()}
        peaks = self._peaks(workload, hardware)
        for row in report.layers:
            row.setdefault("unit", {"compute": "compute", "memory": "memory", "communication": "link"}[row["bound"]])
            row["repeat"] = row.get("count", 1)
            row["total_s"] = row["time_s"]
            row["dram_bytes"] = row["bytes"]
            row["roof"], row["peak_flops_per_s"] = peaks[row["name"]]
        report.totals["dram_bytes_per_s"] = hardware.memory_bytes_per_s
        return report


    @staticmethod
    def _peaks(workload: Any, hardware: Any) -> dict[str, tuple[str, float]]:
        """Each row's roof: the tensor-core peak of its datatype for MACs, the vector rate otherwise."""
        out: dict[str, tuple[str, float]] = {}
        for part, graph in ((p.name, p.graph) for p in parts_of(workload)):
            for e in graph.einsums:
                name = f"{part}.{e.name}" if part else e.name
                if e.op is OpKind.MAC:
                    dtype = hardware.matrix_dtype(e.inputs[0].tensor.dtype_bytes)
                    out[name] = (dtype, hardware.matrix_flops_per_s(dtype))
                else:
                    out[name] = ("vector", hardware.vector_flops_per_s * hardware.compute_efficiency)
        return out


register_engine(RooflineEngine())
