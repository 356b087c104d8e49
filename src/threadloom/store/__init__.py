"""Thread stores: where threads live between steps. `open_store(url)` picks one by URL."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import UserError
from .base import StoreCounts, ThreadStore, ThreadSummary, masked_url
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_URL",
    "MemoryStore",
    "SQLiteStore",
    "StoreCounts",
    "ThreadStore",
    "ThreadSummary",
    "open_store",
]

DEFAULT_URL = "sqlite:///threadloom.db"
"""The embedded default: `./threadloom.db`."""


async def open_store(url: str = DEFAULT_URL, *, upgrade: bool = True) -> ThreadStore:
    """The store a URL names: `memory://`, `sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://...`.

    Args:
        url: The store's URL.
        upgrade: True (what a worker or server does) creates the store if it is not there and
            migrates an older one; False opens it as it is, refusing a database that holds no
            store of this threadloom's schema without changing it (what reading commands do).

    Raises:
        UserError: The URL's scheme is not one of these.
        StoreError: The store cannot be opened; without `upgrade`, it is not there as a store of
            this threadloom's schema.
        ImportError: `postgresql://` without the `postgres` extra installed.
    """
    if url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise UserError("sqlite:/// needs a file name, e.g. sqlite:///threadloom.db")
        return SQLiteStore(Path(path), upgrade=upgrade)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # imported only here: psycopg is an extra

        return await PostgresStore.open(url, upgrade=upgrade)
    raise UserError(
        f"unknown store URL {masked_url(url)!r}; use memory://, sqlite:///path.db or postgresql://user@host/db"
    )
