"""The engine interface: one engine per hardware kind, found by kind, held to one contract.

Why a registry beside the hardware-kind registry: ``accelsim.simulate`` is the one place that
dispatches by kind. A new hardware family registers its engine from its own module
(``register_engine(MyEngine())`` at import), so adding one never edits a shared switch; the
conformance test (``tests/test_engine_conformance.py``) runs every registered engine.

The shape follows Timeloop's pre-evaluation check (``check`` returns the reasons a workload or
mapping cannot run, as data, before any costly work) and Stream's core-cost backends (a small
protocol plus a conformance kit).
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from accelsim.errors import AccelsimError

if TYPE_CHECKING:
    from accelsim.hardware.base import HardwareSpec
    from accelsim.mapping import Mapping
    from accelsim.report import Report


@dataclass(frozen=True)
class Problem:
    """Why a workload or mapping cannot run: the field at fault, what is wrong, what is allowed."""

    field: str
    detail: str
    allowed: str | None = None

    def error(self) -> AccelsimError:
        return AccelsimError(self.detail, field=self.field, allowed=self.allowed)


@runtime_checkable
class Engine(Protocol):
    """What every engine provides.

    ``kind``: the hardware kind it runs (the ``kind:`` of a hardware YAML).
    ``metrics``: extra totals it reports beyond the Report core, name -> Arrow type name
    (``"int64"``, ``"float64"``, ``"string"``); sweeps build their column schema from it.
    ``options``: the keyword options ``simulate`` takes (``accelsim.simulate`` refuses others).
    ``check``: cheap; every reason the workload (a Graph or ModelGraph) or mapping cannot run.
    ``simulate``: the Report; called only when ``check`` returned nothing.
    """

    kind: str
    metrics: MappingABC[str, str]
    options: tuple[str, ...]  # keyword options ``simulate`` accepts; any other is refused by name

    # ``check`` gets the same options as ``simulate`` (a capacity test may depend on them, e.g. the
    # mesh engine's ``layer_at_a_time``) and ignores those it does not need
    def check(self, workload: Any, hardware: "HardwareSpec", mapping: "Mapping | None",
              **options: Any) -> list[Problem]: ...

    def simulate(self, workload: Any, hardware: "HardwareSpec", mapping: "Mapping | None" = None,
                 **options: Any) -> "Report": ...


ENGINES: dict[str, Engine] = {}
_DISCOVERED = False


def register_engine(engine: Engine) -> Engine:
    """Register ``engine`` for its hardware kind (one engine per kind; a second is a bug)."""
    if not isinstance(engine, Engine):
        raise TypeError(f"{engine!r} does not implement the Engine protocol")
    existing = ENGINES.get(engine.kind)
    if existing is not None and type(existing) is not type(engine):
        raise TypeError(f"kind {engine.kind!r} already has engine {type(existing).__name__}")
    ENGINES[engine.kind] = engine
    return engine


def discover() -> dict[str, Engine]:
    """Import every module of ``accelsim.engines`` once so each registers its engine.

    Lazy on purpose: the CLI's start-up must not pay for simpy, pandas and every engine.
    """
    global _DISCOVERED
    if not _DISCOVERED:
        import accelsim.engines as package

        for info in pkgutil.iter_modules(package.__path__):
            if info.name != "registry":
                importlib.import_module(f"{package.__name__}.{info.name}")
        _DISCOVERED = True
    return ENGINES


DEFAULT_MAPPER_GROUP = "accelsim.default_mappers"


def default_mapper(kind: str) -> Any:
    """The mapper an engine of ``kind`` uses when ``simulate`` is given no mapping.

    Why an entry point and not an import: the simulator never imports a mapper (mappers call the
    simulator, not the other way round), yet ``simulate(model, "a100-cores")`` should map its GEMMs
    the way a user expects. The mappers package declares its defaults in ``pyproject.toml``
    (group ``accelsim.default_mappers``, name = hardware kind), so the dependency lives in the
    packaging, and another package can install a better default without editing accelsim.
    """
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=DEFAULT_MAPPER_GROUP) if ep.name == kind]
    if not found:
        raise AccelsimError(f"no default mapper is installed for hardware kind {kind!r}; pass a mapping",
                            field="mapping", allowed=f"a Mapping, or a package declaring a {DEFAULT_MAPPER_GROUP} "
                                                     "entry point (reinstall accelsim: pip install -e .)")
    return found[0].load()


def engine_for(kind: str) -> Engine:
    """The engine for a hardware kind, or one clear error listing the kinds that have one."""
    engines = discover()
    if kind not in engines:
        raise AccelsimError(f"no engine runs hardware kind {kind!r}", field="hardware.kind",
                            allowed=sorted(engines))
    return engines[kind]
