"""JSON for the CLI's ``--json`` outputs: finite numbers only.

Why: Python's ``json`` writes ``Infinity`` and ``NaN``, which are not JSON (RFC 8259 Sec. 6), so a
consumer's parser fails far from the cause. A non-finite number in a result always comes from an
input (a rate near zero, a size near overflow), so it is the user's error: one line naming
where in the document it appeared, exit status 2, and nothing printed.
"""
from __future__ import annotations

import json
import math
from typing import Any

from accelsim.errors import AccelsimError


def non_finite_path(obj: Any, path: str = "") -> tuple[str, float] | None:
    """The first ``(dotted path, value)`` of a NaN or infinite float inside ``obj``, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "(top level)", obj)
    if isinstance(obj, dict):
        for k, v in obj.items():
            hit = non_finite_path(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            hit = non_finite_path(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that refuses NaN and infinity with an AccelsimError naming the field."""
    hit = non_finite_path(obj)
    if hit is not None:
        where, value = hit
        raise AccelsimError(f"the result is not a finite number ({value}); an input rate, bandwidth or size is "
                            "probably out of range", field=where, allowed="finite numbers")
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError as error:  # a value converted by ``default`` (numpy scalars) was not finite
        raise AccelsimError(f"the result holds a non-finite number ({error})", field="--json",
                            allowed="finite numbers") from None
