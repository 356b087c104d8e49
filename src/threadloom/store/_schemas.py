"""Why a store opened as it is (`upgrade=False`, as the CLI's reading commands open it) cannot be used.

Only the store's owners (`threadloom worker`, `threadloom serve`) create a store or migrate it: a
command that reads or decides refuses a database without the store's tables, or of another schema,
and changes nothing in it. The owners too refuse a SQLite file of another program's (`foreign_tables`).
"""

from __future__ import annotations

from collections.abc import Collection

from ..exceptions import StoreError

__all__ = ["foreign_tables", "not_a_store", "unusable_schema"]

_OWNERS = "`threadloom worker` or `threadloom serve`"


def not_a_store(where: str) -> StoreError:
    """The error for a database that holds none of the store's tables."""
    return StoreError(f"{where} is not a threadloom store: it has none of the store's tables ({_OWNERS} creates them)")


def foreign_tables(where: str, names: Collection[str]) -> StoreError:
    """The error for a database that holds other tables (`names`) and none of threadloom's: no one makes it a store."""
    listed = sorted(names)
    shown = ", ".join(f"`{name}`" for name in listed[:3]) + (", ..." if len(listed) > 3 else "")
    return StoreError(
        f"{where} is not a threadloom store: it holds other tables ({shown}) and none of threadloom's; "
        "it is left as it is: give threadloom a database of its own"
    )


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
