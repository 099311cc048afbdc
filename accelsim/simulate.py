"""``simulate(workload, hardware, mapping=None, **options) -> Report``: the one simulation path.

Why one function: the CLI, sweeps, mappers and notebooks all call this, and it is the only place
that chooses an engine by hardware kind (``accelsim.engines.registry``). A workload is a
``Graph`` or a ``ModelGraph`` (parts repeated); hardware is a spec, a preset name or a YAML path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.engines.registry import engine_for
from accelsim.errors import AccelsimError
from accelsim.hardware.base import HardwareSpec, load_hardware
from accelsim.ir import parts_of
from accelsim.mapping import Mapping
from accelsim.report import Report


def simulate(workload: Any, hardware: HardwareSpec | str | Path, mapping: Mapping | None = None,
             **options: Any) -> Report:
    """Run ``workload`` on ``hardware`` with the engine registered for its kind.

    Raises ``AccelsimError`` naming the field at fault when the hardware kind has no engine or
    the engine's check finds the workload or mapping cannot run (nothing is ever costed as zero).
    """
    spec = hardware if isinstance(hardware, HardwareSpec) else load_hardware(hardware)
    _check_workload(workload)
    engine = engine_for(spec.kind)
    unknown = sorted(set(options) - set(getattr(engine, "options", ())))
    if unknown:  # an option an engine would ignore is a silently wrong number
        raise AccelsimError(f"the {spec.kind} engine has no options {unknown}", field="options",
                            allowed=", ".join(getattr(engine, "options", ())) or "none")
    problems = engine.check(workload, spec, mapping, **options)
    if problems:
        raise problems[0].error()
    return engine.simulate(workload, spec, mapping, **options)


def _check_workload(workload: Any) -> None:
    parts_of(workload)  # one clear error for anything but a Graph or a ModelGraph
