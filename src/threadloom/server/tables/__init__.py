"""The server's own tables, in the store's database beside the threads: API keys, settings, the webhook outbox.

    tables = await open_tables("sqlite:///threadloom.db")   # or postgresql://..., memory://
    keys = KeyRing(stored=tables.keys)                      # the keys `threadloom keys create` stored
    secret = await link_secret(tables)                      # the same answer links after a restart

The tables live in the same database as the runtime's store (so one backup holds both) but on
connections of their own: the store's schema and code are the store's. `Tables` (base.py) is the
small Protocol the three backends share: `memory://` (one process, nothing kept), SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from ...exceptions import UserError
from ...store import MemoryStore, SQLiteStore, ThreadStore
from ...store.base import masked_url
from .._signing import new_webhook_secret
from .base import LINK_SECRET, WEBHOOK_SECRET, Delivery, StoredKey, Tables, scopes_text, stored_key

__all__ = [
    "LINK_SECRET",
    "WEBHOOK_SECRET",
    "Delivery",
    "StoredKey",
    "Tables",
    "link_secret",
    "open_tables",
    "scopes_text",
    "stored_key",
    "stored_tables",
    "tables_url",
    "webhook_secret",
    "writable_tables",
]


async def open_tables(where: str | ThreadStore) -> Tables:
    """The server's tables in the database a store URL (or an open store) names, created if needed.

    Args:
        where: `memory://`, `sqlite:///path.db`, `postgresql://...`, or a store of one of those kinds
            (its database is used; a `MemoryStore` gets tables in memory of their own).

    Raises:
        UserError: Not a URL or store of these kinds.
        StoreError: The database cannot be opened, or has a newer schema of these tables.
    """
    url = where if isinstance(where, str) else tables_url(where)
    if url == "memory://":
        from .memory import MemoryTables

        return MemoryTables()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise UserError("sqlite:/// needs a file name, e.g. sqlite:///threadloom.db")
        from .sqlite import SQLiteTables

        return await SQLiteTables.open(Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresTables  # psycopg is an extra

        return await PostgresTables.open(url)
    raise UserError(f"unknown store URL {masked_url(url)!r}; use memory://, sqlite:///path.db or postgresql://...")


async def stored_tables(url: str) -> Tables | None:
    """The server's tables as they are in the database a store URL names; None in a store that has none yet.

    For commands that only read them (`threadloom keys ls`, `revoke`): nothing is created or
    upgraded, and a database that is not threadloom's is left unchanged.

    Raises:
        UserError: Not a URL of these kinds.
        StoreError: The database cannot be opened, holds none of threadloom's tables (neither the
            store's nor these; an empty one too), or a store or these of another schema.
    """
    if url == "memory://":
        from .memory import MemoryTables

        return MemoryTables()
    if url.startswith("sqlite:///") and url != "sqlite:///":
        from .sqlite import stored

        return await stored(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import stored as stored_in_postgres  # psycopg is an extra

        return await stored_in_postgres(url)
    return await open_tables(url)  # a URL of no known kind: its error


async def writable_tables(url: str) -> Tables:
    """The server's tables, created if needed, for a command that writes them beside a store it does not own.

    For `threadloom keys create`: a new SQLite file, or a database without a store, gets the
    tables (`open_tables`); a store there must be of this threadloom's schema, as the reading
    commands require, else it is refused and the database left unchanged.

    Raises:
        UserError: Not a URL of these kinds.
        StoreError: A store of another schema, or as `open_tables` raises.
    """
    if url.startswith("sqlite:///") and url != "sqlite:///":
        from .sqlite import check_store

        await check_store(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        from .postgres import check_store as check_postgres_store  # psycopg is an extra

        await check_postgres_store(url)
    return await open_tables(url)


def tables_url(store: ThreadStore) -> str:
    """The URL of the database an open store uses (`memory://` for a `MemoryStore`).

    A `threadloom.otel.TracedStore` uses the database of the store it wraps.

    Raises:
        UserError: A store of another kind: its database is unknown here.
    """
    if isinstance(store, MemoryStore):
        return "memory://"
    if isinstance(store, SQLiteStore):
        return f"sqlite:///{store.path}"
    try:
        from ...store.postgres import PostgresStore  # psycopg is an extra
    except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
        pass
    else:
        if isinstance(store, PostgresStore):
            return store.url
    try:
        from ...otel import TracedStore  # opentelemetry is an extra
    except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
        pass
    else:
        if isinstance(store, TracedStore):
            wrapped = store.wrapped
            return wrapped if isinstance(wrapped, str) else tables_url(wrapped)
    raise UserError(
        f"the server keeps its tables beside a memory, SQLite or PostgreSQL store, not a {type(store).__name__}"
    )


async def link_secret(tables: Tables) -> bytes:
    """The key that signs answer links, made once and kept, so links stay valid across restarts."""
    return (await tables.add_setting(LINK_SECRET, secrets.token_urlsafe(32))).encode()


async def webhook_secret(tables: Tables) -> str:
    """The `whsec_` secret for subscriptions configured without one, made once and kept."""
    return await tables.add_setting(WEBHOOK_SECRET, new_webhook_secret())
