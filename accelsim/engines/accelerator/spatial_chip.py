"""A FuseMax/FLAT-style chip for the whole-model engine: GEMMs on the 2D array, vector ops on the
1D array (or the 2D array where only it has the op), one global buffer, DRAM.

Why its own module: the GEMM placement (a loop nest through the kind's default mapper, or the
artifact's stream-once model) is this chip's whole difference from the systolic one
(``chips.SystolicChip``); the composition and lowering are shared.
"""
from __future__ import annotations

import math

from accelsim.engines.accelerator.chip_base import (
    MAPPERS,
    Chip,
    GemmWork,
    default_gemm_mapper,
)
from accelsim.errors import AccelsimError
from accelsim.hardware.spatial import SpatialAccelerator
from accelsim.ir import GemmShape

_GEMM_CACHE: dict[tuple, tuple[float, dict[str, float]]] = {}  # placed GEMMs: (cycles, DRAM words per operand)


class SpatialChip(Chip):
    """GEMM cycles follow the FuseMax artifact's Timeloop convention (``hardware/spatial.py``): a
    ``rows x cols`` output tile per contracted step, so ``batch * ceil(M/rows) * ceil(N/cols) * K``
    MAC op-cycles when the array's edges are used whole.

    ``mapper="tiling"`` (the default): each GEMM is placed by the kind's default mapper (entry
    point ``accelsim.default_mappers: spatial``, ``mappers.tiling.spatial``): a global-buffer tile
    and a DRAM loop order, all operands sharing the buffer's capacity, double buffered. The nest
    is checked and counted here (``spatial_nest.replay``: loop-nest DRAM traffic, array cycles per
    buffer tile), so an operand that no plan keeps resident is fetched again, as it must be. When
    an operand lives on chip (an activation ``lowering.Placement`` keeps in half the buffer, or a
    fused tensor) the tiles get the other half.
    ``mapper="fixed"``: the artifact's end-to-end model, every operand streamed once whatever the
    buffer holds (optimistic when neither the input nor the weight block fits the buffer).
    Energy from the per-action table either way: MACs (with the PE register file), and every
    DRAM byte written into the buffer and read out once. Placements are cached per distinct shape.
    """

    def __init__(self, spec: SpatialAccelerator, mapper: str = "tiling") -> None:
        if mapper not in MAPPERS:
            raise AccelsimError(f"unknown GEMM mapper {mapper!r}", field="options.mapper", allowed=MAPPERS)
        self.mapper = mapper
        self._key: str | None = None
        self._half: SpatialAccelerator | None = None
        self.spec = spec
        self.clock_hz = spec.clock_hz
        self.dram_bytes_per_cycle = spec.dram.bytes_per_cycle(spec.clock_hz)
        self.activation_buffer_bytes = spec.buffer_bytes
        self.links = spec.links
        self.peak_macs_per_cycle = spec.array_2d.pes
        self.dram_capacity_bytes = spec.dram.capacity_bytes
        self.dram_read_pj_per_byte = spec.energy.dram_pj_per_byte
        self.dram_write_pj_per_byte = spec.energy.dram_pj_per_byte

    def _action_pj(self, actions: dict[str, int]) -> float:
        table = self.spec.energy.compute_pj
        missing = sorted(set(actions) - set(table))
        if missing:
            raise AccelsimError(f"no energy for actions {missing}", field="energy.compute_pj", allowed=sorted(table))
        return sum(table[a] * n for a, n in actions.items())

    def _stream_once(self, shape: GemmShape, ifmap_words: int | None) -> tuple[float, dict[str, float]]:
        """The artifact's end-to-end model: inputs and weights read once, outputs written once."""
        a2 = self.spec.array_2d
        cycles = shape.batch * math.ceil(shape.m / a2.rows) * math.ceil(shape.n / a2.cols) * shape.k * \
            a2.cost("mac").cycles
        words_in = shape.m * shape.k if ifmap_words is None else ifmap_words
        return float(cycles), {"ifmap": float(shape.batch * words_in), "filter": float(shape.batch * shape.k * shape.n),
                               "ofmap_read": 0.0, "ofmap_write": float(shape.batch * shape.m * shape.n)}

    def _for_tiles(self, offchip: tuple[float, float, float]) -> SpatialAccelerator:
        """The buffer a GEMM's tiles may use: all of it, or the half that ``lowering.Placement``
        leaves free when an operand lives on chip (it keeps such a tensor in the other half)."""
        if min(offchip) > 0:
            return self.spec
        if self._half is None:
            half = self.spec.global_buffer.model_copy(update={"capacity_bytes": self.spec.buffer_bytes // 2})
            self._half = self.spec.model_copy(update={"global_buffer": half})
        return self._half

    def _placed(self, shape: GemmShape, ifmap_words: int | None, wb: int,
                offchip: tuple[float, float, float]) -> tuple[float, dict[str, float]]:
        """What the default mapper placed, replayed and counted here (cached per shape)."""
        from accelsim.engines.accelerator.spatial_nest import replay
        from accelsim.tiling import LoopProblem

        if self._key is None:
            self._key = self.spec.model_dump_json()
        key = (self._key, shape.m, shape.k, shape.n, shape.batch, ifmap_words, wb, offchip)
        if key in _GEMM_CACHE:
            return _GEMM_CACHE[key]
        problem = LoopProblem.gemm(shape.m, shape.k, shape.n, shape.batch, wb)
        spec = self._for_tiles(offchip)
        nest, _ = default_gemm_mapper("spatial")(problem, spec, offchip)
        if nest is None:
            raise AccelsimError(f"no GEMM tile fits the {spec.buffer_bytes} bytes of global buffer it has (one "
                                f"{wb}-byte element of each of the three operands, double buffered, needs {6 * wb})",
                                field="global_buffer.capacity_bytes", allowed=f">= {6 * wb}")
        c = replay(nest, problem, spec)  # the engine checks and counts the plan, not the mapper
        rd, wr = c.cost.reads_bytes[c.cost.dram_level], c.cost.writes_bytes[c.cost.dram_level]
        ifmap = rd["A"] / wb
        if ifmap_words is not None and ifmap_words != shape.m * shape.k:
            # a convolution's input is smaller than its im2col view: each fetch of the view fetches
            # that share of distinct input words [approximation, as the stream-once model's footprint]
            ifmap = ifmap * ifmap_words / (shape.m * shape.k)
        result = (float(c.cycles), {"ifmap": ifmap, "filter": rd["B"] / wb, "ofmap_read": rd["C"] / wb,
                                    "ofmap_write": wr["C"] / wb})
        if len(_GEMM_CACHE) > 4096:
            _GEMM_CACHE.clear()
        _GEMM_CACHE[key] = result
        return result

    def gemm(self, shape: GemmShape, ifmap_words: int | None, dtype_bytes: int | None = None,
             offchip: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> GemmWork:
        a2 = self.spec.array_2d
        wb = dtype_bytes or self.spec.word_bytes
        if self.mapper == "fixed":
            cycles, dram = self._stream_once(shape, ifmap_words)
        else:
            cycles, dram = self._placed(shape, ifmap_words, wb, offchip)
        en = self.spec.energy
        energy = {"mac": shape.macs * (self._action_pj(a2.cost("mac").actions) + a2.regfile_pj_per_mac),
                  "buffer": sum(dram.values()) * wb * (en.buffer_read_pj_per_byte + en.buffer_write_pj_per_byte)}
        return GemmWork(cycles, float(shape.macs), dram, energy, self.mapper)

    @property
    def vector_elements_per_cycle(self) -> float:
        return float(self.spec.array_1d.pes)

    def _array_for(self, op: str):
        for array in (self.spec.array_1d, self.spec.array_2d):
            if op in array.ops:
                return array
        return None

    def vector_cycles(self, op: str, elements: float) -> float | None:
        kind = _SPATIAL_OP.get(op, op)
        array = self._array_for(kind)
        if array is None:
            return None
        return elements * array.ops[kind].cycles * _SPATIAL_PASSES.get(op, 1) / array.pes

    def vector_energy_pj(self, op: str, elements: float) -> float | None:
        kind = _SPATIAL_OP.get(op, op)
        array = self._array_for(kind)
        if array is None:
            return None
        actions = array.ops[kind].actions
        # a MAC action also reads its operands from the PE register file (as the GEMMs are charged)
        per_element = self._action_pj(actions) + actions.get("mac", 0) * array.regfile_pj_per_mac
        return elements * _SPATIAL_PASSES.get(op, 1) * per_element

    @property
    def vector_ops(self) -> list[str]:
        kinds = set(self.spec.array_1d.ops) | set(self.spec.array_2d.ops)
        return sorted({op for op, k in _SPATIAL_OP.items() if k in kinds} | kinds)


# The spatial presets list primitive ops only (mac, add, sub, max, exp, div, mul). Composite op
# kinds of the IR run as passes of primitives: an activation (GELU/SiLU) as one exp pass (the
# sigmoid/tanh inside it) plus a multiply; a norm (LayerNorm/RMSNorm) as square-accumulate,
# subtract-or-scale and multiply passes. [assumption, documented: the FuseMax artifact costs
# only attention's softmax, not norms or activations]
_SPATIAL_OP = {"activation": "exp", "norm": "mac"}
_SPATIAL_PASSES = {"activation": 2, "norm": 3}
