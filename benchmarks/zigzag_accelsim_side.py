"""The accelsim half of ``tiling_vs_zigzag.py``: the tpu_like hierarchy, the layers, the search,
and the re-costing of accelsim's nest under ZigZag's energy conventions.

Why its own module: the side-by-side test (``tests/test_tiling_vs_zigzag_bench.py``) runs this
half without ZigZag; the other half (venv, subprocess, table) lives in ``tiling_vs_zigzag.py``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from accelsim.engines.loopnest import NestCost, sent_down, trailing_run
from accelsim.errors import AccelsimError
from accelsim.tiling import (
    Fanout,
    Hierarchy,
    LoopNest,
    LoopProblem,
    StorageLevel,
    TensorAccess,
    tensor_roles,
)
from mappers.tiling import search

TPU_LIKE = Path(__file__).resolve().parent / "data" / "tpu_like.yaml"
INPUT_BITS, WEIGHT_BITS, PSUM_BITS = 8, 8, 16  # tpu_like: 8-bit inputs and weights, rf_2B holds a 16-bit psum


@dataclass(frozen=True)
class Layer:
    """One GEMM (``M x K x N``) or convolution (stride 1, 'same' padding), described once for both tools."""

    name: str
    m: int = 0
    k: int = 0
    n: int = 0
    out_hw: int = 0  # convolution: output height = width
    in_ch: int = 0
    out_ch: int = 0
    kernel: int = 0

    @property
    def is_conv(self) -> bool:
        return self.kernel > 0

    def gemm_view(self) -> tuple[int, int, int]:
        """(M, K, N) of a GEMM; of a convolution its im2col lowering (only for counting MACs)."""
        if self.is_conv:
            return self.out_hw * self.out_hw, self.in_ch * self.kernel * self.kernel, self.out_ch
        return self.m, self.k, self.n

    @property
    def macs(self) -> int:
        return math.prod(self.gemm_view())


# BERT-base at sequence 512 (hidden 768, FFN 3072; Devlin et al., NAACL 2019, Table 1 'BERT-BASE');
# ResNet-50 stage 2 and 5 3x3 convolutions and a stage-4 1x1 (He et al., CVPR 2016, Table 1).
LAYERS: tuple[Layer, ...] = (
    Layer("bert-qkv", m=512, k=768, n=768),
    Layer("bert-ffn1", m=512, k=768, n=3072),
    Layer("bert-ffn2", m=512, k=3072, n=768),
    Layer("resnet50-conv4-1x1", out_hw=14, in_ch=1024, out_ch=256, kernel=1),
    Layer("resnet50-conv2-3x3", out_hw=56, in_ch=64, out_ch=64, kernel=3),
    Layer("resnet50-conv5-3x3", out_hw=7, in_ch=512, out_ch=512, kernel=3),
)


def zigzag_layer(layer: Layer) -> dict:
    """The same layer as a ZigZag workload entry (the format of its ONNX parsers' output)."""
    precision = {"W": WEIGHT_BITS, "I": INPUT_BITS, "O": PSUM_BITS, "O_final": PSUM_BITS}
    if not layer.is_conv:
        return {"id": 0, "name": layer.name, "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
                "dimension_relations": [], "loop_dims": ["C", "D", "K"], "loop_sizes": [layer.k, layer.m, layer.n],
                "operand_precision": precision}
    pad = layer.kernel // 2
    return {"id": 0, "name": layer.name, "operator_type": "Conv",
            "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
            "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
            "loop_dims": ["B", "K", "OX", "OY", "C", "FX", "FY"],
            "loop_sizes": [1, layer.out_ch, layer.out_hw, layer.out_hw, layer.in_ch, layer.kernel, layer.kernel],
            "operand_precision": precision, "pr_loop_dims": ["IX", "IY"],
            "pr_loop_sizes": [layer.out_hw, layer.out_hw], "padding": [[pad, pad], [pad, pad]]}


def problem_of(layer: Layer) -> LoopProblem:
    """8-bit inputs and weights and a 16-bit output (A, B, C: the roles of ``benchmarks/data/tpu_like.yaml``).

    A GEMM ``C[m,n] += A[m,k] * B[k,n]``; a convolution through its own ranks
    (``LoopProblem.conv``: the input tile is the sliding window's, as ZigZag's ``ix = ox + fx``),
    with the same 'same' padding as ``zigzag_layer`` (the padding zeros are not moved).
    """
    if layer.is_conv:
        hw, kernel = layer.out_hw, layer.kernel
        return LoopProblem.conv(1, layer.out_ch, layer.in_ch, hw, hw, kernel, kernel, dtype_bytes=INPUT_BITS // 8,
                                name=layer.name, names=("A", "B", "C"), output_dtype_bytes=PSUM_BITS // 8,
                                pad=kernel // 2)
    m, k, n = layer.gemm_view()
    return LoopProblem(layer.name, {"m": m, "k": k, "n": n},
                       (TensorAccess("A", frozenset("mk"), INPUT_BITS // 8),
                        TensorAccess("B", frozenset("kn"), WEIGHT_BITS // 8),
                        TensorAccess("C", frozenset("mn"), PSUM_BITS // 8, is_output=True)))


def load_tpu_like(path: Path = TPU_LIKE, conv: bool = False
                  ) -> tuple[Hierarchy, dict[str, dict[str, tuple[float, float]]]]:
    """The Hierarchy of ``benchmarks/data/tpu_like.yaml`` and its ZigZag per-byte energy table.

    ``conv``: the fanouts take ``conv_allowed_ranks`` (a convolution's rank names) where given."""
    key = "conv_allowed_ranks" if conv else "allowed_ranks"
    data = yaml.safe_load(Path(path).read_text())
    try:
        levels = tuple(StorageLevel(
            lv["name"], lv.get("capacity_bytes"), lv.get("capacity_by_tensor"), lv.get("bandwidth_bytes_per_cycle"),
            float(lv.get("read_pj_per_byte", 0.0)), float(lv.get("write_pj_per_byte", 0.0)),
            bool(lv.get("double_buffered", False)),
            fanouts=tuple(Fanout(f["name"], int(f["size"]), allowed_ranks=None if f.get(key, f.get("allowed_ranks"))
                                 is None else frozenset(f.get(key, f.get("allowed_ranks"))))
                          for f in lv.get("fanouts", ())),
            energy_pj_per_byte_by_tensor=None if lv.get("energy_pj_per_byte_by_tensor") is None else {
                role: (float(rw[0]), float(rw[1])) for role, rw in lv["energy_pj_per_byte_by_tensor"].items()})
            for lv in data["levels"])
        table = {lv: {role: (float(rw[0]), float(rw[1])) for role, rw in roles.items()}
                 for lv, roles in data["zigzag_pj_per_byte"].items()}
        hierarchy = Hierarchy(data["name"], levels, float(data["clock_hz"]), float(data["mac_pj"]))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise AccelsimError(f"malformed accelerator description: {err!r}", field=str(path)) from None
    if set(table) != {lv.name for lv in levels}:
        raise AccelsimError("zigzag_pj_per_byte must name every level", field=str(path),
                            allowed=[lv.name for lv in levels])
    return hierarchy, table


def mac_side_output_bytes(nest: LoopNest, problem: LoopProblem) -> tuple[int, int]:
    """(writes, reads) of the output at the innermost level made by the MACs themselves.

    The same terms as ``accelsim.engines.loopnest.evaluate`` at level 0: the partial sums the
    MACs write into the innermost level and read back. ZigZag charges these once per MAC (in
    ``mac_pj`` here), so they are taken out before the parent-side accesses are re-costed.
    """
    loops = nest.inner_first()
    above = [x for lv in reversed(loops) for x in lv.temporal]
    out = problem.output
    sigma = {}
    for factors in loops[0].spatial.values():
        for r, f in factors.items():
            sigma[r] = sigma.get(r, 1) * f
    base = sent_down(problem, out, {r: 1 for r in problem.extents}, sigma, trailing_run(above, out))
    copies = math.prod(f for lv in loops[1:] for fs in lv.spatial.values() for r, f in fs.items()
                       if r not in out.ranks)
    return base * out.dtype_bytes, (base - problem.elements(out) * copies) * out.dtype_bytes


def zigzag_energy_pj(nest: LoopNest, problem: LoopProblem, cost: NestCost, hierarchy: Hierarchy,
                     table: dict[str, dict[str, tuple[float, float]]]) -> float:
    """Energy of accelsim's nest counted ZigZag's way: per MAC (``mac_pj``) plus every access of
    every (level, operand) at the per-byte energy of the ZigZag memory that plays that role."""
    roles = tensor_roles(problem)
    mac_w, mac_r = mac_side_output_bytes(nest, problem)
    inner = hierarchy.levels[0].name
    energy = cost.macs * hierarchy.mac_pj
    for lv in hierarchy.levels:
        for t in problem.tensors:
            reads, writes = cost.reads_bytes[lv.name][t.name], cost.writes_bytes[lv.name][t.name]
            if lv.name == inner and t.is_output:
                reads, writes = reads - mac_r, writes - mac_w
            r_pj, w_pj = table[lv.name][roles[t.name]]
            energy += reads * r_pj + writes * w_pj
    return energy


def first_fill_cycles(nest: LoopNest, problem: LoopProblem, hierarchy: Hierarchy) -> float:
    """Cycles to bring the first tile of each input into every level below DRAM at DRAM's bandwidth.

    ZigZag adds this 'data onloading' before compute starts; accelsim's nest assumes it overlaps
    (the per-level roofline). Reported separately so the two latencies can be compared both ways.
    """
    from accelsim.tiling import footprint_bytes, tiles

    top = tiles(nest, problem)[-2] if len(hierarchy.levels) > 1 else {}
    dram_bw = hierarchy.levels[-1].bandwidth_bytes_per_cycle
    if not top or dram_bw is None:
        return 0.0
    return sum(footprint_bytes(top, t) for t in problem.tensors if not t.is_output) / dram_bw


def describe(nest: LoopNest) -> str:
    """The nest on one line, outermost level first: ``dram[n4 m2] sram[k24; rows:k32 cols:n32] pe[]``."""
    parts = []
    for lv in nest.levels:
        temporal = " ".join(f"{r}{f}" for r, f in lv.temporal)
        spatial = " ".join(f"{name}:" + ",".join(f"{r}{f}" for r, f in fs.items()) for name, fs in lv.spatial.items())
        parts.append(f"{lv.level}[{temporal}{'; ' + spatial if spatial else ''}]")
    return " ".join(parts)


def run_accelsim(layer: Layer, objective: str, time_limit_s: float, hierarchy: Hierarchy,
                 table: dict[str, dict[str, tuple[float, float]]]) -> dict:
    """Map ``layer`` with the tiling search and cost it both ways; CPU seconds of the search."""
    problem = problem_of(layer)
    start = time.process_time()
    r = search(problem, hierarchy, objective, time_limit_s)
    cpu_s = time.process_time() - start
    c = r.cost
    return {"layer": layer.name, "objective": objective, "status": r.status, "gap": r.gap, "cpu_s": cpu_s,
            "latency_cycles": c.latency_cycles, "compute_cycles": c.compute_cycles,
            "first_fill_cycles": first_fill_cycles(r.nest, problem, hierarchy),
            "energy_pj": c.energy_pj, "zigzag_energy_pj": zigzag_energy_pj(r.nest, problem, c, hierarchy, table),
            "dram_bytes": c.dram_bytes, "compulsory_bytes": sum(problem.compulsory_bytes().values()),
            "macs": c.macs, "nest": describe(r.nest)}
