"""The one error type a user's mistake turns into.

Why a single type: the CLI catches exactly this and prints one line with exit status 2, so every
library module can raise it deep inside without knowing about the CLI, and any other exception
stays a genuine bug with a traceback.
"""
from __future__ import annotations

from collections.abc import Iterable


class AccelsimError(ValueError):
    """A problem with the user's input, named by field, with what is allowed."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        allowed: Iterable[object] | str | None = None,
        source: str | None = None,
    ) -> None:
        self.field = field
        self.source = source
        if allowed is not None and not isinstance(allowed, str):
            allowed = ", ".join(str(a) for a in allowed)
        self.allowed = allowed
        self.detail = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        text = f"{where}: {self.detail}" if where else self.detail
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        return text


class InfeasibleError(AccelsimError):
    """No mapping satisfies the constraints (for example a scratchpad smaller than one operator needs)."""


def require_positive(value: float, field: str, source: str | None = None) -> None:
    """Raise an AccelsimError unless ``value`` is a positive number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise AccelsimError(f"must be a positive number, got {value!r}", field=field, source=source)
