"""The ``pim`` engine: decode on a PIM device, GEMVs in the banks, the rest on the host side.

Per Einsum: a multiply-accumulate that streams a weight or KV-cache tensor goes to PIM when the
preset's ``pim_ops`` rule says so (``gemv``: all; ``attention``: KV-cache ones, as AttAcc;
``op_per_byte``: MACs per streamed byte below the limit, Duplex's rule); its matrix is laid out
by ``accelsim.engines.pim.layout.map_gemv`` and timed by command-level simulation of one channel
(``gemv.gemv_cycles``), bounded below by the MAC units' rate where the preset gives one. Every
other operator runs on the host (the device's ASIC or xPU) at max(FLOPs / rate, bytes /
bandwidth). Operators run one after another (no overlap), as a decode step's dependences do.
On a preset with a global buffer (gddr6-aim) the GEMV stream also carries the WRGB refills of
the input vector and the RDMAC read-outs (``gb_gemv``), in the loop order that simulates faster;
energy is by component from the preset's cited per-event energies (``energy``).
"""
from __future__ import annotations

import math
from typing import Any

from accelsim.engines.pim.energy import op_energy
from accelsim.engines.pim.gb_gemv import GbGemv, best_order
from accelsim.engines.pim.gemv import gemv_cycles
from accelsim.engines.pim.layout import map_gemv
from accelsim.engines.registry import Problem
from accelsim.engines.roofline import einsum_flops, einsum_traffic
from accelsim.errors import AccelsimError
from accelsim.hardware.pim import PimSpec
from accelsim.ir import Einsum, OpKind, TensorRole, parts_of
from accelsim.ir.resident import resident_tensors
from accelsim.report import Report, Totals

STREAMED = (TensorRole.WEIGHT, TensorRole.KV_CACHE)


def streamed_operand(e: Einsum):
    """The weight or KV-cache operand a GEMV streams, or None."""
    if e.op is not OpKind.MAC:
        return None
    for o in e.inputs:
        if o.tensor.role in STREAMED:
            return o
    return None


def runs_on_pim(e: Einsum, hw: PimSpec) -> bool:
    o = streamed_operand(e)
    if o is None:
        return False
    if hw.pim_ops == "attention":
        return o.tensor.role is TensorRole.KV_CACHE
    if hw.pim_ops == "op_per_byte":
        touched = float(e.attrs.get("touched", {}).get(o.tensor.name, 1.0))
        nbytes = o.tensor.bytes * touched
        return nbytes > 0 and (einsum_flops(e) / 2) / nbytes < hw.op_per_byte_limit
    return True


def pim_cost(e: Einsum, hw: PimSpec) -> dict[str, Any]:
    o = streamed_operand(e)
    t = o.tensor
    touched = float(e.attrs.get("touched", {}).get(t.name, 1.0))
    reduced = set(e.reduction_ranks())
    k = 1
    for d, n in zip(t.dims, t.shape):
        if d in reduced:
            k *= n
    n_total = max(1, round(t.elements * touched / k))
    macs = einsum_flops(e) / 2
    vectors = max(1, round(macs / (k * n_total)))
    std = hw.dram
    units = hw.total_channels * hw.banks_per_mac_command
    layout = map_gemv(k, n_total, t.dtype_bytes, units, std.row_bytes, std.access_bytes)
    timings = hw.timings()
    traffic = einsum_traffic(e)
    io_bytes = sum(b for name, b in traffic.items() if name != t.name)
    order = None
    if hw.global_buffer_bytes is not None:
        # AiM: the input goes into each channel's global buffer by WRGB and the sums come back by
        # RDMAC, both in the command stream; each input vector streams the matrix once
        # neurons that need different input vectors (attention heads) cannot share one buffer fill:
        # a bank's neurons split into that many sub-GEMVs, each filling the buffer with its own input
        inputs = [i for i in e.inputs if i.tensor is not t]
        input_elements = max((i.tensor.elements for i in inputs), default=k * vectors)
        distinct = min(layout.neurons_per_unit_max, max(1, round(input_elements / (k * vectors))))
        g = GbGemv(k, math.ceil(layout.neurons_per_unit_max / distinct), t.dtype_bytes, hw.global_buffer_bytes,
                   hw.mac_registers_per_bank, std.row_bytes, std.access_bytes)
        order, cycles, hit = best_order(g, tuple(sorted(timings.items())), tuple(sorted(std.organization.items())))
        time_s = cycles * distinct * vectors * std.tck_s
    else:
        # bank-side MAC units take one input vector per MAC command; a logic-die unit buffers the
        # streamed rows and serves every vector from its buffer (its MAC rate caps it below)
        stream_vectors = 1 if hw.level == "logic" else vectors
        # the busiest unit's columns, read by MAC commands that each cover banks_per_mac_command banks
        commands = math.ceil(layout.unit_bytes * units / hw.total_channels / hw.mac_command_bytes)
        cycles, hit = gemv_cycles(hw.level, commands, std.columns_per_row, stream_vectors,
                                  tuple(sorted(timings.items())), tuple(sorted(std.organization.items())))
        time_s = cycles * std.tck_s
    bound = "pim-dram"
    if hw.macs_per_s_per_device:
        compute_s = macs / (hw.macs_per_s_per_device * hw.devices)
        if compute_s > time_s:
            time_s, bound = compute_s, "pim-compute"
    if order is None:
        # the input vectors are written into the GEMV buffers and the results read out over the
        # device interface (AttAcc's WRGB / MVSB); charged serially, at the host bandwidth
        time_s += io_bytes / hw.host.bytes_per_s
    else:
        bound = f"pim-dram (buffer order {order})"
    nbytes = t.bytes * touched
    return dict(unit="pim", time_s=time_s, bound=bound, bytes=nbytes + io_bytes, streamed_bytes=nbytes,
                io_bytes=io_bytes, row_hit_rate=hit,
                load_balance=layout.load_balance, macs=macs, flops=einsum_flops(e),
                traffic=traffic | {t.name: nbytes})


def host_cost(e: Einsum, hw: PimSpec) -> dict[str, Any]:
    traffic = einsum_traffic(e)
    nbytes = sum(traffic.values())
    flops = einsum_flops(e)
    memory_s = nbytes / hw.host.bytes_per_s
    compute_s = flops / hw.host.flops_per_s if hw.host.flops_per_s else 0.0
    bound = "host-compute" if compute_s > memory_s else "host-memory"
    return dict(unit="host", time_s=max(memory_s, compute_s), bound=bound, bytes=nbytes, bytes_host=nbytes,
                row_hit_rate=None,
                macs=flops / 2 if e.op is OpKind.MAC else 0.0, flops=flops, traffic=traffic)


def coprocess_cost(e: Einsum, hw: PimSpec) -> dict[str, Any] | None:
    """Duplex expert co-processing (arXiv 2409.01141 section V-B): experts move one at a time from
    the xPU to Logic-PIM while the makespan improves; xPU and PIM then run their experts at the
    same time. Under uniform expected routing every expert has the same token count, so the
    greedy search is the best integer split x: makespan = max(x t_pim, (E - x) t_host)."""
    if not (hw.coprocess_experts and e.attrs.get("kind") == "moe_expert" and streamed_operand(e) is not None):
        return None
    experts = max(1, round(float(e.attrs.get("distinct_experts", 1))))
    on_pim, on_host = pim_cost(e, hw), host_cost(e, hw)
    t_p, t_h = on_pim["time_s"] / experts, on_host["time_s"] / experts
    x = min(range(experts + 1), key=lambda n: (max(n * t_p, (experts - n) * t_h), -n))
    frac = x / experts
    traffic = {k: v * (1 - frac) for k, v in on_host["traffic"].items()}
    for k, v in on_pim["traffic"].items():
        traffic[k] = traffic.get(k, 0.0) + v * frac
    return dict(unit="pim+host", time_s=max(x * t_p, (experts - x) * t_h), bound=f"co-processed {x}/{experts} on pim",
                bytes=on_pim["bytes"] * frac + on_host["bytes"] * (1 - frac), streamed_bytes=on_pim["streamed_bytes"],
                io_bytes=on_pim["io_bytes"], bytes_host=on_host["bytes"] * (1 - frac), row_hit_rate=on_pim["row_hit_rate"],
                load_balance=on_pim["load_balance"],
                macs=on_pim["macs"], flops=on_pim["flops"], traffic=traffic, pim_fraction=frac,
                pim_s=x * t_p, host_s=(experts - x) * t_h)


def _parts(workload: Any) -> list[tuple[str, Any, int]]:
    return [(p.name, p.graph, p.repeat) for p in parts_of(workload)]


class PimEngine:
    kind = "pim"
    metrics = {"token_latency_s": "float64", "tokens_per_s": "float64", "row_hit_rate": "float64",
               "pim_bytes": "float64", "host_bytes": "float64", "pim_fraction_s": "float64"}
    options: tuple[str, ...] = ()

    def check(self, workload: Any, hardware: PimSpec, mapping: Any = None, **options: Any) -> list[Problem]:
        problems: list[Problem] = []
        if mapping is not None:
            problems.append(Problem("mapping", "the PIM engine lays out weights and KV cache itself "
                                    "(accelsim.engines.pim.layout); it replays no mapping", "no mapping"))
        try:
            parts = _parts(workload)
        except AccelsimError as err:
            return [Problem(err.field or "workload", err.detail, err.allowed)]
        resident = resident_tensors(parts, STREAMED)
        need = sum(t.bytes * n for t, n in resident.values())
        if need > hardware.capacity_bytes:
            problems.append(Problem("hardware.capacity_bytes",
                                    f"weights and KV cache need {need} bytes, {hardware.name} holds "
                                    f"{hardware.capacity_bytes}: {need - hardware.capacity_bytes} bytes missing",
                                    f"a workload of at most {hardware.capacity_bytes} resident bytes"))
        for _, graph, _ in parts:
            for e in graph.einsums:
                if e.points == 0:
                    problems.append(Problem(f"workload.{e.name}", "has an empty iteration space (zero batch or "
                                            "context)", "batch >= 1 and context >= 1"))
                o = streamed_operand(e)
                if o is not None and hardware.dram.row_bytes % o.tensor.dtype_bytes:
                    problems.append(Problem(f"workload.{e.name}", f"{o.tensor.dtype_bytes}-byte elements do not "
                                            f"divide the {hardware.dram.row_bytes}-byte row", "1, 2, 4 bytes"))
        return problems

    def simulate(self, workload: Any, hardware: PimSpec, mapping: Any = None, **options: Any) -> Report:
        problems = self.check(workload, hardware, mapping)
        if problems:
            raise problems[0].error()
        tck = hardware.dram.tck_s
        rows: list[dict[str, Any]] = []
        core = Totals(0.0, 0.0)
        pim_s = pim_bytes = host_bytes = hit_reads = 0.0
        weighted_hits = 0.0
        for part, graph, repeat in _parts(workload):
            for e in graph.einsums:
                c = coprocess_cost(e, hardware)
                if c is None:
                    c = pim_cost(e, hardware) if runs_on_pim(e, hardware) else host_cost(e, hardware)
                roles: dict[str, float] = {}
                tensors = {t.name: t for t in e.tensors}
                for name, b in c["traffic"].items():
                    r = tensors[name].role.value
                    roles[r] = roles.get(r, 0.0) + b
                energy = op_energy(c, hardware)
                cycles = c["time_s"] / tck
                busy = ({"pim": c["pim_s"], "host": c["host_s"]} if c["unit"] == "pim+host"
                        else {c["unit"]: c["time_s"]})
                written = c["traffic"].get(e.output.tensor.name, 0.0)
                op_totals = Totals(c["time_s"], cycles, c["macs"], c["flops"],
                                   energy, {"dram": c["bytes"] - written},
                                   {"dram": written}, roles, busy)
                core = core + op_totals.scaled(repeat)
                share = {"pim": 1.0, "host": 0.0}.get(c["unit"], c.get("pim_fraction", 0.0))
                if share:
                    pim_s += (c["pim_s"] if c["unit"] == "pim+host" else c["time_s"]) * repeat
                    pim_bytes += c["bytes"] * share * repeat
                    weighted_hits += c["row_hit_rate"] * c["bytes"] * share * repeat
                    hit_reads += c["bytes"] * share * repeat
                host_bytes += c["bytes"] * (1 - share) * repeat
                # one instance per row, ``repeat`` says how many (as the mesh and multicore engines;
                # the CLI multiplies)
                rows.append(dict(name=f"{part}.{e.name}" if part else e.name, op=e.op.value, unit=c["unit"],
                                 bound=c["bound"], repeat=repeat, total_s=c["time_s"],
                                 total_cycles=cycles, bytes=c["bytes"],
                                 row_hit_rate=c["row_hit_rate"], load_balance=c.get("load_balance")))
        batch = int((getattr(workload, "meta", None) or {}).get("batch") or 1)
        extra = dict(token_latency_s=core.total_s, tokens_per_s=batch / core.total_s if core.total_s else 0.0,
                     row_hit_rate=weighted_hits / hit_reads if hit_reads else None, pim_bytes=pim_bytes,
                     host_bytes=host_bytes, pim_fraction_s=pim_s / core.total_s if core.total_s else 0.0)
        meta = dict(getattr(workload, "meta", {}) or {})
        meta.update(device=hardware.name, standard=hardware.standard, level=hardware.level,
                    internal_bytes_per_s=hardware.internal_bytes_per_s,
                    energy_model=("per-event energies from the preset sources (accelsim.engines.pim.energy); "
                                  f"components without a cited number: {core.energy_unknown or 'none'}"))
        return Report(workload=getattr(workload, "name", "workload"), hardware=hardware.name, layers=rows,
                      totals={**core.flat(), **extra}, meta=meta, core=core)
