"""A parameter's type as messages name it, whole: `int`, `list[str]`, `Literal['a', 'b']`."""

from __future__ import annotations

__all__ = ["type_name"]


def type_name(hint: object) -> str:
    """The type's name, or its whole text where it has arguments (`list` alone would hide them)."""
    name = getattr(hint, "__name__", None)
    if isinstance(name, str) and not getattr(hint, "__args__", None):
        return name
    return repr(hint).replace("typing.", "")
