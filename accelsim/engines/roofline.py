"""Roofline engine: each Einsum takes max(compute time, memory time[, link time]).

Model (no overlap between operators, no fusion, no caching between operators):
- compute time = FLOPs / achievable FLOP/s. Multiply-accumulate Einsums run on tensor cores at
  the peak for their datatype (from the element size of their first input; a fallback such as
  1-byte MACs at the int8 peak on a device without fp8 is listed in ``meta['dtype_substitutions']``);
  every other op kind
  (norms, softmax, element-wise, copies) runs at the device's vector rate.
- memory time = bytes / achievable bandwidth, bytes = every operand read once and the output
  written once (compulsory traffic), so activations between operators go through DRAM.
- an all-reduce also takes ``collective_bytes / interconnect bandwidth``; it is labelled
  ``communication`` when that term dominates.

Two Einsum ``attrs`` refine the counts (see ``workloads/transformer.py``): ``flop_fraction``
scales FLOPs (causal masking, MoE one-hot experts), ``touched`` maps tensor names to the fraction
actually read (embedding gathers, MoE experts not routed to).

Input is a ``Graph`` or a ``ModelGraph`` (``accelsim.ir.parts_of``), so identical layers are
costed once and multiplied.
"""
from __future__ import annotations

from typing import Any

from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.gpu import DTYPE_BY_BYTES, GPU
from accelsim.ir import Einsum, Graph, OpKind, TensorRole, parts_of
from accelsim.report import Report
from accelsim.ir.resident import resident_tensors

BOUNDS = ("compute", "memory", "communication")


def einsum_flops(e: Einsum) -> float:
    """FLOPs actually performed: iteration-space FLOPs x ``attrs['flop_fraction']`` (default 1)."""
    return e.flops * float(e.attrs.get("flop_fraction", 1.0))


def einsum_traffic(e: Einsum) -> dict[str, float]:
    """Bytes per tensor: each input read once, the output written once, scaled by ``attrs['touched']``.

    A tensor that appears as several operands of one Einsum is counted once.
    """
    touched: dict[str, float] = dict(e.attrs.get("touched", {}))
    traffic: dict[str, float] = {}
    for o in (*e.inputs, e.output):
        t = o.tensor
        traffic[t.name] = t.bytes * float(touched.get(t.name, 1.0))
    if e.op is OpKind.ALLREDUCE:  # in-place: read and write the buffer
        traffic[e.output.tensor.name] = 2 * e.output.tensor.bytes
    return traffic


def _parts(workload: Any) -> list[tuple[str, Graph, int]]:
    return [(p.name, p.graph, p.repeat) for p in parts_of(workload)]


def einsum_cost(e: Einsum, device: GPU) -> dict[str, Any]:
    """One execution of ``e`` on ``device``: flops, bytes, the three time terms and the bound."""
    flops = einsum_flops(e)
    traffic = einsum_traffic(e)
    nbytes = sum(traffic.values())
    dtype = None
    if e.op is OpKind.MAC:
        dtype = device.matrix_dtype(e.inputs[0].tensor.dtype_bytes)
        rate = device.matrix_flops_per_s(dtype)
    else:
        rate = device.vector_flops_per_s * device.compute_efficiency
    compute_s = flops / rate
    memory_s = nbytes / device.memory_bytes_per_s
    comm_bytes = float(e.attrs.get("collective_bytes", 0.0)) if e.op is OpKind.ALLREDUCE else 0.0
    comm_s = 0.0
    if comm_bytes:
        if device.interconnect_bytes_per_s is None:
            raise AccelsimError(f"{device.name} has no interconnect bandwidth for the all-reduce {e.name}",
                                field="interconnect_bytes_per_s")
        comm_s = comm_bytes / (device.interconnect_bytes_per_s * device.interconnect_efficiency)
    times = {"compute": compute_s, "memory": memory_s, "communication": comm_s}
    bound = max(BOUNDS, key=lambda k: times[k])
    return dict(flops=flops, bytes=nbytes, comm_bytes=comm_bytes, compute_s=compute_s, memory_s=memory_s,
                comm_s=comm_s, time_s=times[bound], bound=bound, traffic=traffic, dtype=dtype)


def roofline(workload: Any, device: GPU | str) -> Report:
    """Cost every Einsum of ``workload`` on ``device`` (a GPU spec or preset name).

    Layer rows are totals over a part's repeats (``count`` says how many); ``totals`` has
    ``total_s``, ``flops``, ``bytes``, time per bound, and bytes by tensor role.
    """
    if isinstance(device, str):
        device = load_hardware(device, kind="gpu")
    if not isinstance(device, GPU):
        raise AccelsimError(f"roofline needs a gpu device, got {getattr(device, 'kind', device)!r}", field="device")
    rows: list[dict[str, Any]] = []
    totals = dict(total_s=0.0, flops=0.0, bytes=0.0, comm_bytes=0.0)
    by_bound = {b: 0.0 for b in BOUNDS}
    by_role: dict[str, float] = {}
    by_part: dict[str, float] = {}
    parts = list(_parts(workload))
    substitutions: dict[str, str] = {}  # element size -> datatype used when the preferred one is missing
    for part, graph, repeat in parts:
        for e in graph.einsums:
            c = einsum_cost(e, device)
            if c["dtype"] is not None:
                size = e.inputs[0].tensor.dtype_bytes
                preferred = DTYPE_BY_BYTES.get(size, (c["dtype"],))[0]
                if c["dtype"] != preferred:
                    substitutions[f"{size}-byte"] = f"costed at the {c['dtype']} peak: {device.name} has no {preferred}"
            name = f"{part}.{e.name}" if part else e.name
            rows.append(dict(name=name, part=part, op=e.op.value, kind=e.attrs.get("kind", e.op.value), count=repeat,
                             flops=c["flops"] * repeat, bytes=c["bytes"] * repeat, comm_bytes=c["comm_bytes"] * repeat,
                             compute_s=c["compute_s"] * repeat, memory_s=c["memory_s"] * repeat,
                             comm_s=c["comm_s"] * repeat, time_s=c["time_s"] * repeat, bound=c["bound"],
                             intensity_flops_per_byte=c["flops"] / c["bytes"] if c["bytes"] else None))
            totals["total_s"] += c["time_s"] * repeat
            totals["flops"] += c["flops"] * repeat
            totals["bytes"] += c["bytes"] * repeat
            totals["comm_bytes"] += c["comm_bytes"] * repeat
            by_bound[c["bound"]] += c["time_s"] * repeat
            by_part[part or graph.name] = by_part.get(part or graph.name, 0.0) + c["time_s"] * repeat
            tensors = {t.name: t for t in e.tensors}
            for tname, b in c["traffic"].items():
                role = tensors[tname].role.value
                by_role[role] = by_role.get(role, 0.0) + b * repeat
    totals.update({f"{b}_bound_s": v for b, v in by_bound.items()})
    totals["bytes_by_role"] = by_role
    totals["time_by_part_s"] = by_part
    # weights and KV cache must sit in device memory; KV tensors read (the cache) and written (the
    # appended rows) are both resident; shared weights count once (accelsim.ir.resident)
    weights = resident_tensors(parts, (TensorRole.WEIGHT,))
    kv = resident_tensors(parts, (TensorRole.KV_CACHE,))
    totals["resident_weight_bytes"] = sum(t.bytes * n for t, n in weights.values())
    totals["resident_bytes"] = totals["resident_weight_bytes"] + sum(t.bytes * n for t, n in kv.values())
    capacity = device.memory.capacity_bytes
    totals["fits_memory"] = capacity is None or totals["resident_bytes"] <= capacity
    totals["bound"] = max(BOUNDS, key=lambda b: by_bound[b])
    meta = dict(getattr(workload, "meta", {}) or {})
    # the datatype guess is the user's to see: an fp8 model on an fp8-less device is not free int8
    meta.update(dtype_substitutions=substitutions, device=device.name, memory_bytes_per_s=device.memory_bytes_per_s,
                compute_efficiency=device.compute_efficiency, memory_efficiency=device.memory_efficiency)
    return Report(workload=getattr(workload, "name", "workload"), hardware=device.name, layers=rows, totals=totals,
                  meta=meta)
