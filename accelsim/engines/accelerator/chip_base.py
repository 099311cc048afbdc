"""What a chip model answers for the whole-model engine, and how it finds its GEMM mapper.

Why its own module: the systolic and spatial chip models (``chips``, ``spatial_chip``) share this
interface and the lookup of their kind's default mapper through the ``accelsim.default_mappers``
entry point (the engine never imports a mapper).
"""
from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec
from accelsim.hardware.units import ChipLinks
from accelsim.ir import GemmShape


@dataclass(frozen=True)
class GemmWork:
    """A GEMM on the matrix unit: busy cycles, MACs, DRAM bytes per operand, on-chip energy."""

    cycles: float
    macs: float
    # elements moved when every operand streams from DRAM: ifmap, filter, ofmap_write and ofmap_read
    # (partial sums that spill and come back)
    dram_words: dict[str, float]
    energy_pj: dict[str, float | None]  # component (mac, sram, buffer) -> pJ; None: the spec gives no number
    mapper: str = "fixed"  # what placed it: "tiling" (a loop nest), "fold order" (SCALE-Sim's), "fixed"


class Chip:
    """The interface ``compose`` uses; one subclass per hardware kind."""

    spec: HardwareSpec
    clock_hz: float
    dram_bytes_per_cycle: float
    activation_buffer_bytes: int
    links: ChipLinks | None
    peak_macs_per_cycle: int
    dram_capacity_bytes: int | None
    dram_read_pj_per_byte: float | None
    dram_write_pj_per_byte: float | None

    def gemm(self, shape: GemmShape, ifmap_words: int | None, dtype_bytes: int | None = None,
             offchip: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> GemmWork:
        """``offchip``: share of the ifmap's and filter's reads and of the output's final write
        that reach DRAM (0: kept on chip); a mapper weighs its choices by it."""
        raise NotImplementedError

    def vector_cycles(self, op: str, elements: float) -> float | None:
        raise NotImplementedError

    def vector_energy_pj(self, op: str, elements: float) -> float | None:
        raise NotImplementedError

    @property
    def vector_elements_per_cycle(self) -> float:
        raise NotImplementedError

    @property
    def vector_ops(self) -> list[str]:
        raise NotImplementedError


MAPPERS: tuple[str, ...] = ("tiling", "fixed")  # a chip's GEMM placement (SystolicChip, SpatialChip)
_LOADED: dict[str, object] = {}  # kind -> its default mapper, once resolved (an entry-point scan costs ~30 ms)
_FIXED_MODEL = {"systolic": "SCALE-Sim's fold order", "spatial": "the FuseMax stream-once GEMM model"}


def default_gemm_mapper(kind: str):
    """The GEMM mapper of ``kind`` (entry point ``accelsim.default_mappers: <kind>``), resolved once."""
    if kind not in _LOADED:
        from accelsim.engines.registry import DEFAULT_MAPPER_GROUP, default_mapper

        try:
            _LOADED[kind] = default_mapper(kind)
        except AccelsimError:  # an install older than this entry point: say what to do
            raise AccelsimError(f"the {kind} kind's default GEMM mapper (entry point {DEFAULT_MAPPER_GROUP}: "
                                f"{kind}) is not installed", field="options.mapper",
                                allowed="reinstall accelsim (pip install -e .), or mapper='fixed' "
                                        f"(CLI: --gemm-mapper fixed) for {_FIXED_MODEL[kind]}") from None
    return _LOADED[kind]
