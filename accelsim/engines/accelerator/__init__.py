"""The whole-model accelerator engine: systolic and spatial chips run any Graph or ModelGraph.

Why one engine for two kinds: a TPU-like chip and a FuseMax-like chip differ in how a GEMM maps
onto the matrix array and what a vector op costs (``chips``), not in how a model's operators
become work (``lowering``) or how that work overlaps on the units (``compose``). Registered for
``systolic`` and ``spatial``; ``accelsim.simulate`` reaches it by kind.

GEMMs are placed by the kind's default mapper (option ``mapper="tiling"``, found through the
``accelsim.default_mappers`` entry point, so the engine imports no mapper): on a systolic chip
the loop-nest tiling mapper, which keeps SCALE-Sim's fold order wherever no nest beats it; on a
spatial chip a global-buffer tile and DRAM loop order for the 2D array (all operands sharing the
buffer, double buffered), so an operand no plan keeps resident is fetched again. The engine
checks and counts every plan itself (``systolic.nest``, ``accelerator.spatial_nest``). With
``mapper="fixed"``: SCALE-Sim's fold order (``accelsim.engines.systolic.simulate_gemm``) on a
systolic chip, the FuseMax artifact's stream-once GEMM model (every operand read or written
once, whatever the buffer holds) on a spatial one. Each matrix row says which (``mapper``).
A SCALE-Sim topology or .cfg still runs through ``simulate_layers``, the exact three-buffer
view with its fixed fold order. The FuseMax attention reproduction (``engines/spatial_*.py``)
is a separate path and is not affected.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from accelsim.engines.accelerator.chips import Chip, chip_for
from accelsim.engines.accelerator.compose import schedule
from accelsim.engines.accelerator.lowering import Placement, lower, problems
from accelsim.engines.registry import Problem, register_engine
from accelsim.errors import AccelsimError
from accelsim.ir import Graph, TensorRole, parts_of
from accelsim.ir.resident import resident_tensors
from accelsim.report import Report, Totals


def _role(graph: Graph, name: str) -> str:
    return graph.tensors[name].role.value


def simulate_chip_graph(graph: Graph, chip: Chip, *, overlap: bool = True, max_tiles: int = 64,
                        timeline: bool = False, carried: str | None = None, carried_in: str | None = None) -> Report:
    """One Graph on one chip: the Report of its tile-level simulation (``carried``: the output
    tensor handed on chip to the next part or repeat)."""
    place = Placement(graph, chip, carried, carried_in)
    works = [lower(e, chip, place) for e in graph.topological_order()]
    makespan, busy, groups = schedule(graph, works, chip, overlap=overlap, max_tiles=max_tiles)
    clock = chip.clock_hz
    bw = chip.dram_bytes_per_cycle
    rows: list[dict[str, Any]] = []
    by_role: dict[str, float] = defaultdict(float)
    energy: dict[str, float | None] = {}
    read_total = write_total = 0.0
    for g in groups:
        w, e = g.work, g.work.einsum
        read, written = sum(w.reads.values()), sum(w.writes.values())
        read_total, write_total = read_total + read, write_total + written
        row_roles: dict[str, float] = defaultdict(float)
        for name, b in (*w.reads.items(), *w.writes.items()):
            by_role[_role(graph, name)] += b
            row_roles[_role(graph, name)] += b
        dma_cycles = (read + written) / bw
        bound = ("communication" if w.unit == "link" else
                 "memory" if dma_cycles > w.unit_cycles else "compute")
        tasks = g.tasks
        start = min(t.start for t in tasks)
        end = max(t.end for t in tasks)
        for part, pj in w.energy_pj.items():
            known = energy.get(part, 0.0)
            energy[part] = None if pj is None or known is None else known + pj
        flops = _flops(w)
        rows.append({"name": e.name, "op": e.op.value, "unit": w.unit, "bound": bound, "repeat": 1, "flops": flops,
                     "dram_bytes": read + written, "roof": w.unit,
                     "peak_flops_per_s": _unit_peak_flops(chip, w) * clock,
                     "macs": w.macs, "unit_cycles": w.unit_cycles, "dma_cycles": dma_cycles,
                     "start_cycles": start, "end_cycles": end, "total_cycles": max(w.unit_cycles, dma_cycles),
                     "total_s": max(w.unit_cycles, dma_cycles) / clock, "dram_read_bytes": read,
                     "dram_write_bytes": written, "offchip_bytes_by_role": dict(row_roles),
                     **({"mapper": w.mapper} if w.mapper is not None else {})})
    if read_total:
        energy["dram_read"] = None if chip.dram_read_pj_per_byte is None else read_total * chip.dram_read_pj_per_byte
    if write_total:
        energy["dram_write"] = None if chip.dram_write_pj_per_byte is None else \
            write_total * chip.dram_write_pj_per_byte
    flops = sum(_flops(w) for w in works)
    core = Totals(total_s=makespan / clock, total_cycles=makespan, macs=sum(w.macs for w in works), flops=flops,
                  energy_pj_by_component=energy, read_bytes={"dram": read_total}, write_bytes={"dram": write_total},
                  offchip_bytes_by_role=dict(by_role),
                  busy_s={u: busy.get(u, 0.0) / clock for u in ("matrix", "vector", "dma", "link")})
    meta: dict[str, Any] = {"engine": "accelerator", "overlap": overlap}
    if timeline:
        meta["timeline"] = [t for g in groups for t in g.tasks]
    return Report(graph.name, chip.spec.name, rows, core.flat(), meta, core)


def _unit_peak_flops(chip: Chip, work: Any) -> float:
    """FLOP per cycle the operator's unit can reach (its roof): 2 per MAC on the arrays, one per
    element per lane on the vector unit (at one cycle per element)."""
    if work.unit == "matrix":
        return 2.0 * chip.peak_macs_per_cycle
    if work.unit == "vector":
        return chip.vector_elements_per_cycle
    return 0.0


def _flops(work: Any) -> float:
    """2 per MAC; one per element of a vector op; data movement and collectives compute nothing."""
    if work.macs:
        return 2 * work.macs
    if work.unit == "vector":
        return work.einsum.points * float(work.einsum.attrs.get("flop_fraction", 1.0))
    return 0.0


class AcceleratorEngine:
    """The Engine protocol for one chip kind (see ``accelsim.engines.registry``)."""

    metrics = {"peak_macs_per_cycle": "int64", "resident_bytes": "float64", "fits_memory": "bool",
               "dram_bytes_per_s": "float64"}
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.options = ("overlap", "max_tiles", "timeline", "mapper")

    def _replays(self, mapping: Any) -> bool:
        """A mapping with a per-tile pipeline (what ``mappers.fusemax`` emits) on a spatial chip is
        replayed by the attention engine (``accelsim.engines.spatial``) for the cascade Graph it
        maps; this engine otherwise chooses its own schedule."""
        return self.kind == "spatial" and getattr(mapping, "pipeline", None) is not None

    def check(self, workload: Any, hardware: Any, mapping: Any, **options: Any) -> list[Problem]:
        found: list[Problem] = []
        if self._replays(mapping):
            return _attention_problems(workload, hardware, mapping)
        if mapping is not None:
            found.append(Problem("mapping", "this engine chooses its own schedule; it replays no mapping",
                                 "no mapping"))
        chip = chip_for(hardware)
        for graph in _graphs(workload):
            found.extend(problems(graph, chip))
        return found

    def simulate(self, workload: Any, hardware: Any, mapping: Any = None, *, overlap: bool = True,
                 max_tiles: int = 64, timeline: bool = False, mapper: str = "tiling") -> Report:
        if self._replays(mapping):  # a FuseMax attention mapping of a cascade Graph: replay it
            from accelsim.engines.spatial import report as attention_report

            rep = attention_report(workload, hardware, mapping)
            rep.totals = {**rep.core.flat(), **rep.totals}
            rep.meta["engine"] = "spatial attention (mapping replay)"
            return rep
        for name, value in (("overlap", overlap), ("timeline", timeline)):
            if not isinstance(value, bool):
                raise AccelsimError(f"must be true or false, got {value!r}", field=f"options.{name}")
        if isinstance(max_tiles, bool) or not isinstance(max_tiles, int) or not 1 <= max_tiles <= 4096:
            raise AccelsimError(f"must be an integer in 1..4096, got {max_tiles!r}", field="options.max_tiles")
        chip = chip_for(hardware, mapper)
        parts = _parts(workload)
        total: Report | None = None
        records: list[dict[str, Any]] = []  # one run of each part, parts one after another (cycles)
        offset = 0.0
        for i, (name, graph, repeat, carried) in enumerate(parts):
            # the hidden state arrives on chip from the previous part (or repeat) when that one kept it
            carried_in = _part_input(workload, i) if i > 0 and parts[i - 1][3] is not None else None
            report = simulate_chip_graph(graph, chip, overlap=overlap, max_tiles=max_tiles, timeline=timeline,
                                         carried=carried, carried_in=carried_in)
            for row in report.layers:
                row["part"] = name
            if timeline:
                records += [{"unit": t.unit, "start": offset + t.start, "end": offset + t.end,
                             "label": f"{name}.{t.name}",
                             "kind": t.unit} for t in report.meta["timeline"]]
                offset += report.core.total_cycles
            report = report.scaled(repeat) if repeat != 1 else report
            total = report if total is None else total + report
        assert total is not None
        total.workload = getattr(workload, "name", total.workload)
        total.totals["peak_macs_per_cycle"] = chip.peak_macs_per_cycle
        total.totals["dram_bytes_per_s"] = chip.dram_bytes_per_cycle * chip.clock_hz
        # weights and KV cache live in DRAM (each shared tensor once, accelsim.ir.resident)
        triples = [(n, g, r) for n, g, r, _ in parts]
        resident = resident_tensors(triples, (TensorRole.WEIGHT, TensorRole.KV_CACHE))
        total.totals["resident_bytes"] = float(sum(t.bytes * n for t, n in resident.values()))
        capacity = chip.dram_capacity_bytes
        total.totals["fits_memory"] = capacity is None or total.totals["resident_bytes"] <= capacity
        total.meta = {"engine": "accelerator", "overlap": overlap, "parts": [(n, r) for n, _, r, _ in parts],
                      "gemm_mapper": _mapper_meta(self.kind, mapper, total.layers),
                      **({"timeline": records} if timeline else {})}
        return total


def _mapper_meta(kind: str, mapper: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What placed the GEMMs: the option and, per placement, how many matrix rows it placed."""
    placed: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.get("mapper") is not None:
            placed[row["mapper"]] += 1
    fixed = {"systolic": "SCALE-Sim's fold order", "spatial": "FuseMax output tiles, every operand streamed once"}
    return {"option": mapper, "placed": dict(placed), **({"fixed_model": fixed[kind]} if mapper == "fixed" else {})}


def _attention_problems(workload: Any, hardware: Any, mapping: Any) -> list[Problem]:
    """What stops a FuseMax attention mapping from replaying on this workload, as Problems."""
    from accelsim.engines.spatial import decode
    from accelsim.errors import AccelsimError

    if not isinstance(workload, Graph):
        return [Problem("workload", "a FuseMax attention mapping replays on one cascade Graph",
                        "attention-1pass or attention-3pass Graph")]
    try:
        decode(workload, mapping)
    except AccelsimError as why:
        allowed = why.allowed if why.allowed is None or isinstance(why.allowed, str) else \
            ", ".join(map(str, why.allowed))
        return [Problem(why.field or "mapping", str(why), allowed)]
    return []


def _parts(workload: Any) -> list[tuple[str, Graph, int, str | None]]:
    parts = parts_of(workload)
    # the hidden state stays on chip between parts; the last part's output (logits, or the block's
    # output when blocks run alone) is written, in every repeat, so repeats scale exactly
    return [(p.name or p.graph.name, p.graph, p.repeat, p.output if i < len(parts) - 1 else None)
            for i, p in enumerate(parts)]


def _part_input(workload: Any, i: int) -> str | None:
    return parts_of(workload)[i].input


def _graphs(workload: Any) -> list[Graph]:
    return [g for _, g, _, _ in _parts(workload)]


for _kind in ("systolic", "spatial"):
    register_engine(AcceleratorEngine(_kind))
