"""Why a store opened as it is (`upgrade=False`, as the CLI's reading commands open it) cannot be used.

Only the store's owners (`threadloom worker`, `threadloom serve`) create a store or migrate it: a
command that reads or decides refuses a database without the store's tables, or of another schema,
and changes nothing in it.
"""

from __future__ import annotations

from ..exceptions import StoreError

__all__ = ["not_a_store", "unusable_schema"]

_OWNERS = "`threadloom worker` or `threadloom serve`"


def not_a_store(where: str) -> StoreError:
    """The error for a database that holds none of the store's tables."""
    return StoreError(f"{where} is not a threadloom store: it has none of the store's tables ({_OWNERS} creates them)")


def unusable_schema(where: str, version: int, known: int) -> StoreError | None:
    """The error for a store whose schema `version` is not the `known` one; None when it is."""
    if version > known:
        return StoreError(f"{where} has threadloom store schema {version}; this threadloom knows {known}")
    if version < known:
        return StoreError(
            f"{where} has threadloom store schema {version}, older than this threadloom's {known}; "
            f"it is left as it is: {_OWNERS} upgrades it"
        )
    return None
