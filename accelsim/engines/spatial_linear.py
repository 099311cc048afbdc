"""The rest of a transformer layer (the linear projections) on the same spatial accelerator.

Why: FuseMax's end-to-end result is attention plus the layer's GEMMs (Q, K, V and output
projections, the two feed-forward GEMMs), which run on the 2D array of either design at full
rate. Each GEMM is an Einsum from ``accelsim.ir.gemm``; it streams row tiles of tokens through
the 2D array (``rows`` tokens x ``cols`` outputs per tile, the contracted extent in cycles per
tile) while DRAM brings the tile's input rows in and takes its outputs out, and its weights once
(the FuseMax artifact's end2end model: every GEMM reads its input activation and weights once
and writes its output once).
"""
from __future__ import annotations

import math

from accelsim.engines.events import Task, extrapolate, run
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import Einsum, Graph, OpKind, Operand, Tensor, TensorRole
from accelsim.report import Report
from accelsim.ir.views import AttentionModel


def linear_graph(model: AttentionModel, seq: int, batch: int = 64, dtype_bytes: int = 2) -> Graph:
    """The six GEMMs of one encoder layer for ``batch x seq`` tokens (``out[t,n] = in[t,k] w[k,n]``)."""
    t, d, ffn = batch * seq, model.d_model, model.ffn

    def act(name: str, width: int, role: TensorRole = TensorRole.ACTIVATION) -> Tensor:
        return Tensor(name, ("t", "c"), (t, width), dtype_bytes, role)

    def mm(name: str, x: Tensor, out: Tensor) -> Einsum:
        k, n = x.shape[1], out.shape[1]
        wt = Tensor(f"{name}.w", ("k", "n"), (k, n), dtype_bytes, TensorRole.WEIGHT)
        return Einsum(name, Operand(out, ("t", "n")), (Operand(x, ("t", "k")), Operand(wt, ("k", "n"))),
                      {"t": t, "k": k, "n": n}, OpKind.MAC, {"kind": "gemm"})

    x, attn = act("X", d, TensorRole.INPUT), act("Attn", d, TensorRole.INPUT)
    o, h1 = act("O", d), act("H1", ffn)
    return Graph(f"{model.name}-linear", [
        mm("Wq", x, act("Qp", d, TensorRole.OUTPUT)), mm("Wk", x, act("Kp", d, TensorRole.OUTPUT)),
        mm("Wv", x, act("Vp", d, TensorRole.OUTPUT)), mm("Wo", attn, o), mm("FFN1", o, h1),
        mm("FFN2", h1, act("Y", d, TensorRole.OUTPUT)),
    ])


def _gemm_cycles(e: Einsum, hw: SpatialAccelerator) -> tuple[float, float, int]:
    """(makespan, busy 2D cycles, DRAM bytes) of one GEMM streamed by token row tiles."""
    g = e.as_gemm()
    w = e.inputs[0].tensor.dtype_bytes
    rows, cols = hw.array_2d.rows, hw.array_2d.cols
    n_tiles = math.ceil(g.m / rows)
    tile_cycles = math.ceil(g.n / cols) * g.k
    bpc = hw.dram.bytes_per_cycle(hw.clock_hz)
    weights = g.k * g.n * w
    in_tile, out_tile = rows * g.k * w, rows * g.n * w

    def sim(count: int) -> float:
        tasks = [Task("weights", "dram", weights / bpc)]
        prev = None
        for i in range(count):
            ld = Task(f"in{i}", "dram", in_tile / bpc, deps=[tasks[0]])
            c = Task(f"mm{i}", "2d", tile_cycles, deps=[ld])
            tasks += [ld, c]
            if prev is not None:
                tasks.append(prev)
            prev = Task(f"out{i}", "dram", out_tile / bpc, deps=[c])
        tasks.append(prev)
        return run(tasks, ["2d", "dram"]).makespan_cycles

    makespan = extrapolate(sim, n_tiles, 8, 16)
    traffic = weights + g.m * g.k * w + g.m * g.n * w
    return makespan, n_tiles * tile_cycles, traffic


def linear_report(model: AttentionModel, seq: int, hw: SpatialAccelerator, batch: int = 64) -> Report:
    graph = linear_graph(model, seq, batch)
    layers, total_c, busy, traffic = [], 0.0, 0.0, 0
    for e in graph:
        c, b, t = _gemm_cycles(e, hw)
        layers.append({"einsum": e.name, "latency_cycles": c, "busy_2d_cycles": b, "dram_bytes": t, "macs": e.macs})
        total_c, busy, traffic = total_c + c, busy + b, traffic + t
    en = hw.energy
    macs = graph.macs
    energy = (macs * en.compute_pj["mac"] + traffic * (en.dram_pj_per_byte + en.buffer_write_pj_per_byte
                                                        + en.buffer_read_pj_per_byte))
    totals = {"latency_cycles": total_c, "latency_s": total_c / hw.clock_hz, "dram_bytes": traffic,
              "energy_pj": energy, "util_2d": busy / total_c}
    return Report(workload=graph.name, hardware=hw.name, layers=layers, totals=totals)
