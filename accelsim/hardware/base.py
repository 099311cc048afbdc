"""Hardware specs as pydantic models, loaded from YAML, with a registry of kinds.

Why a registry: each hardware family (systolic, spatial, gpu, pim, mesh) lives in its own
module and registers its model under the ``kind:`` a YAML file declares, so adding a family
never edits a shared switch statement.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError, field_validator

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import BytesPerS, NoBoolNumbers, PerCycle
from accelsim.yamlio import path_exists, read_yaml, validation_error  # noqa: F401  (read_yaml re-exported: others import it from here)

PRESET_DIR = Path(__file__).parent / "presets"
# Largest integer a spec field may hold: exact as a float64 (engines mix ints and floats) and far
# above any real size (2**53 bytes = 8 PiB); 10**30 array rows would overflow numpy and C longs.
MAX_SPEC_INT = 2**53


class Spec(NoBoolNumbers):
    """Base of every spec: strict (unknown fields are errors, so typos never pass silently),
    finite (NaN or infinity in a rate or size would turn every result into NaN with exit 0),
    bounded (integers up to :data:`MAX_SPEC_INT`) and numeric where numbers belong (``yes`` is
    not 1 B/s; see ``accelsim.fieldchecks``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bounded_integers(cls, value: Any) -> Any:
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SPEC_INT:
                raise ValueError(f"too large: at most 2**53 = {MAX_SPEC_INT}")
        return value


class MemoryLevel(Spec):
    """One level of the memory hierarchy.

    Bandwidth may be given per cycle (SCALE-Sim style) or per second (datasheet style); the
    accelerator that owns the level converts with its clock.
    """

    name: str
    capacity_bytes: int | None = Field(default=None, gt=0, description="None means unbounded (DRAM)")
    bandwidth_bytes_per_cycle: PerCycle | None = Field(default=None, description="bounds: accelsim.fieldchecks")
    bandwidth_bytes_per_s: BytesPerS | None = Field(default=None, description="bounds: accelsim.fieldchecks")
    read_energy_pj_per_byte: float = Field(default=0.0, ge=0)
    write_energy_pj_per_byte: float = Field(default=0.0, ge=0)

    def bytes_per_cycle(self, clock_hz: float) -> float:
        if self.bandwidth_bytes_per_cycle is not None:
            return self.bandwidth_bytes_per_cycle
        if self.bandwidth_bytes_per_s is not None:
            return self.bandwidth_bytes_per_s / clock_hz
        raise AccelsimError("no bandwidth given", field=f"memory {self.name}",
                            allowed="bandwidth_bytes_per_cycle or bandwidth_bytes_per_s")


class HardwareSpec(Spec):
    """Fields every hardware description carries."""

    kind: str
    name: str
    description: str = ""
    sources: list[str] = Field(default_factory=list, description="where every number comes from")


SpecT = TypeVar("SpecT", bound=type[HardwareSpec])
KINDS: dict[str, type[HardwareSpec]] = {}


def register_kind(kind: str):
    """Class decorator: YAML files with ``kind: <kind>`` load into this model."""

    def wrap(cls: SpecT) -> SpecT:
        KINDS[kind] = cls
        return cls

    return wrap


def spec_from_dict(data: Any, source: str = "<dict>") -> HardwareSpec:
    """Build the right model for ``data['kind']``, turning validation errors into one line."""
    from accelsim import hardware  # noqa: F401  (importing the package registers every kind)

    if not isinstance(data, dict):
        raise AccelsimError("expected a mapping of fields at top level", source=source)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:  # [1, 2] is not a name (and is unhashable)
        raise AccelsimError(f"unknown hardware kind {kind!r}", field="kind", allowed=sorted(KINDS), source=source)
    try:
        return KINDS[kind].model_validate(data)
    except ValidationError as err:
        raise validation_error(err, source) from None


def preset_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def list_presets(kind: str | None = None) -> list[HardwareSpec]:
    specs = [load_hardware(name) for name in preset_paths()]
    return [s for s in specs if kind is None or s.kind == kind]


def load_hardware(name_or_path: str | Path, kind: str | None = None) -> HardwareSpec:
    """A preset by name, or a YAML file by path. ``kind`` restricts what is acceptable."""
    presets = preset_paths()
    key = str(name_or_path)
    if key in presets:
        path = presets[key]
    else:
        path = Path(key)
        if not path.suffix and not path_exists(path):
            raise AccelsimError(f"unknown hardware {key!r}", field="hardware", allowed=sorted(presets))
    spec = spec_from_dict(read_yaml(path), source=str(path))
    if kind is not None and spec.kind != kind:
        names = [n for n, p in presets.items() if read_yaml(p).get("kind") == kind]
        raise AccelsimError(f"{key!r} is a {spec.kind} design, this needs kind {kind}", field="hardware",
                            allowed=names)
    return spec
