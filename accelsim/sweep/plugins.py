"""Where a sweep's builders and evaluators may come from, and the gate in front of arbitrary code.

Why a gate: a sweep file is data that people share and download. Before this module, a
``builder: "subprocess:getoutput"`` entry ran a shell command while the spec was merely being
validated, and ``evaluator: "module:function"`` imported any module. Now a name resolves, in
order, to

1. a registered builder/evaluator (``register_builder`` / ``register_evaluator``, code that is
   part of accelsim or that the user's own Python imported first);
2. a package entry point in the group :data:`BUILDER_GROUP` or :data:`EVALUATOR_GROUP` (code the
   user chose to install, e.g. ``[project.entry-points."accelsim.evaluators"] mine = "pkg.mod:fn"``);
3. a ``package.module:function`` reference, imported only when the caller opted in
   (``accelsim sweep run --allow-code``, ``allow_code=True`` in the Python API). Without the
   opt-in nothing is imported and the answer is one :class:`AccelsimError` naming the field.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from accelsim.errors import AccelsimError

BUILDER_GROUP = "accelsim.workloads"
EVALUATOR_GROUP = "accelsim.evaluators"
OPT_IN = "pass --allow-code to `accelsim sweep run` (allow_code=True in the Python API)"


def is_code_reference(name: str) -> bool:
    """``package.module:function`` (what only the opt-in may import) rather than a plain name."""
    return isinstance(name, str) and ":" in name


@functools.lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=group)
    except Exception:  # noqa: BLE001 - a broken distribution's metadata must not break every sweep
        return {}
    return {ep.name: ep for ep in found}


def entry_point_names(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load_entry_point(group: str, name: str, field: str) -> Any | None:
    """The object an installed package exposes as ``name`` in ``group``, or None if there is none."""
    ep = _entry_points(group).get(name)
    if ep is None:
        return None
    try:
        return ep.load()
    except Exception as err:  # noqa: BLE001 - an installed plug-in that fails to import
        raise AccelsimError(f"the installed entry point {name!r} ({ep.value}) failed to load: "
                            f"{type(err).__name__}: {err}", field=field) from None


def refuse_code(target: str, field: str, allowed: list[str]) -> AccelsimError:
    return AccelsimError(f"{target!r} names Python code (module:function), which a sweep file runs only "
                         f"when asked: {OPT_IN}, or register it / install it as an entry point",
                         field=field, allowed=allowed)


def import_callable(target: str, field: str, *, allow_code: bool,
                    allowed: list[str] | None = None) -> Callable[..., Any]:
    """``package.module:function`` to the function, only with ``allow_code``; else one clear error
    raised before anything is imported."""
    if not allow_code:
        raise refuse_code(target, field, allowed or [])
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise AccelsimError(f"expected 'package.module:function', got {target!r}", field=field)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise AccelsimError(f"cannot import module {module_name!r}: {err}", field=field) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AccelsimError(f"module {module_name!r} has no callable {attr!r}", field=field)
    return fn
