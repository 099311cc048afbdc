"""Hardware specs. Importing this package imports every kind module so each registers itself."""
from __future__ import annotations

import importlib
import pkgutil

from accelsim.hardware.base import (  # noqa: F401
    KINDS,
    HardwareSpec,
    MemoryLevel,
    Spec,
    list_presets,
    load_hardware,
    register_kind,
    spec_from_dict,
)

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")
