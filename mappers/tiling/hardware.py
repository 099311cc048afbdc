"""The memory hierarchy the tiling mapper sees for a hardware spec.

``multicore`` specs describe their levels themselves (``MulticoreAccelerator.hierarchy``). A
``systolic`` spec (SCALE-Sim's shape) becomes three levels without changing the systolic kind:
the PEs (one word of each operand: the stationary value, the value passing through, the partial
sum), the three operand SRAMs (each double buffered, as SCALE-Sim halves them) with the array's
rows and columns fanning out below them, and DRAM at the spec's bandwidth.
"""
from __future__ import annotations

from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec
from accelsim.tiling import Fanout, Hierarchy, StorageLevel


def hierarchy_for(spec: HardwareSpec) -> Hierarchy:
    from accelsim.hardware.multicore import MulticoreAccelerator
    from accelsim.hardware.systolic import SystolicAccelerator

    if isinstance(spec, MulticoreAccelerator):
        return spec.hierarchy()
    if isinstance(spec, SystolicAccelerator):
        return systolic_hierarchy(spec)
    raise AccelsimError(f"the tiling mapper has no memory hierarchy for kind {spec.kind!r}", field="hardware",
                        allowed="a multicore or systolic design")


def systolic_hierarchy(spec) -> Hierarchy:
    wb = spec.word_bytes
    pe = StorageLevel("pe", capacity_by_tensor={"A": wb, "B": wb, "C": wb})
    sram = StorageLevel("sram", capacity_by_tensor={"A": spec.sram.ifmap_bytes, "B": spec.sram.filter_bytes,
                                                    "C": spec.sram.ofmap_bytes},
                        read_pj_per_byte=spec.sram_read_energy_pj_per_byte,
                        write_pj_per_byte=spec.sram_write_energy_pj_per_byte, double_buffered=True,
                        fanouts=(Fanout("rows", spec.array.rows), Fanout("cols", spec.array.cols)))
    dram = StorageLevel("dram", bandwidth_bytes_per_cycle=spec.dram_bytes_per_cycle,
                        read_pj_per_byte=spec.dram.read_energy_pj_per_byte,
                        write_pj_per_byte=spec.dram.write_energy_pj_per_byte)
    return Hierarchy(spec.name, (pe, sram, dram), spec.clock_hz, spec.mac_energy_pj)


def dtype_bytes_for(spec: HardwareSpec, default: int = 2) -> int:
    """Element size a GEMM given by shape only uses on ``spec`` (the systolic word, else fp16)."""
    return int(getattr(spec, "word_bytes", default))


def scalesim_fold_nest(problem, spec):
    """SCALE-Sim's fixed schedule on ``spec`` as a loop nest of the systolic hierarchy, or None.

    Column folds outer, row folds inner (both at DRAM: a fold's tiles are what the SRAMs hold),
    the temporal rank streamed through the array (at the SRAMs), the two spatial ranks on rows
    and columns (SCALE-Sim's Sr, Sc, T per dataflow). None when the spatial extents are not
    multiples of the array (the loop-nest space has divisor tiles only).
    """
    from accelsim.tiling import LevelLoops, LoopNest

    ext = {r: problem.extents.get(r, 1) for r in "mkn"}
    if problem.extents.get("b", 1) != 1:
        return None
    rows, cols = spec.array.rows, spec.array.cols
    sr, sc, t = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"), "is": ("k", "m", "n")}[spec.array.dataflow]
    if ext[sr] % rows or ext[sc] % cols:
        return None
    dram = tuple((r, f) for r, f in ((sc, ext[sc] // cols), (sr, ext[sr] // rows)) if f > 1)
    sram = ((t, ext[t]),) if ext[t] > 1 else ()
    spatial = {name: {r: size} for name, r, size in (("rows", sr, rows), ("cols", sc, cols)) if size > 1}
    return LoopNest(problem.name, dict(problem.extents), (LevelLoops("dram", dram), LevelLoops("sram", sram, spatial),
                                                          LevelLoops("pe", ())))
