"""The SQLite store's tables, and the forward-only migrations that make them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.request import pathname2url

from ..exceptions import StoreError
from ._schemas import foreign_tables, not_a_store, unusable_schema

__all__ = [
    "MIGRATIONS",
    "STORE_TABLES",
    "check",
    "file_uri",
    "look",
    "migrate",
    "no_store",
    "refuse_foreign",
    "shown_path",
    "use_wal",
]

MIGRATIONS: tuple[str, ...] = (
    # 1: threads (what the runtime queries), events (one row each), idempotency keys.
    """
    CREATE TABLE threads (
        thread_id TEXT PRIMARY KEY,
        agent TEXT,
        parent_id TEXT,
        status TEXT NOT NULL,
        events INTEGER NOT NULL,
        wake_at TEXT,
        lease_owner TEXT,
        lease_expires TEXT,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX threads_status ON threads (status, updated_at);
    CREATE INDEX threads_agent ON threads (agent, updated_at);
    CREATE TABLE events (
        thread_id TEXT NOT NULL REFERENCES threads (thread_id),
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        PRIMARY KEY (thread_id, seq)
    );
    CREATE TABLE idempotency_keys (
        key TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 2: find due sleepers without reading every sleeping thread.
    """
    CREATE INDEX threads_wake ON threads (wake_at) WHERE status = 'sleeping';
    """,
    # 3: a failed run's retry time and threads set aside as unreadable (both skipped by a claim);
    # idempotency keys scoped to their thread (a launch's to its agent), with the request they carried.
    # A key stored with its thread's creation was a launch's.
    """
    ALTER TABLE threads ADD COLUMN retry_at TEXT;
    ALTER TABLE threads ADD COLUMN unreadable TEXT;
    CREATE TABLE delivery_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        request TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    );
    INSERT INTO delivery_keys SELECT
        CASE WHEN k.created_at = t.created_at THEN 'launch:' || coalesce(t.agent, '') ELSE 'thread:' || k.thread_id END,
        k.key, k.thread_id, NULL, k.created_at
    FROM idempotency_keys k JOIN threads t ON t.thread_id = k.thread_id;
    DROP TABLE idempotency_keys;
    ALTER TABLE delivery_keys RENAME TO idempotency_keys;
    """,
)
"""Forward-only schema migrations; `PRAGMA user_version` records how many are applied."""


STORE_TABLES = frozenset({"threads", "events", "idempotency_keys"})
"""The tables every version of the store has: a file with them (and a `user_version`) is a store."""

_OWN_PREFIX = "threadloom_"  # the server's tables (server/tables/sqlite.py), beside the store's or before them


def file_uri(path: str, mode: str) -> str:
    """The `file:` URI of `path` opened in `mode` (`ro`, `rw`: neither creates the file), for `uri=True`."""
    return f"file:{pathname2url(path)}?mode={mode}"


def shown_path(path: str) -> str:
    """The file's absolute path, quoted, as errors name it: a relative one says nothing of where it was looked for."""
    return repr(str(Path(path).absolute()))


def _contents(path: str) -> tuple[int, frozenset[str]]:
    """The file's `user_version` and its tables' names, read-only (sqlite3's errors as they come)."""
    db = sqlite3.connect(file_uri(path, "ro"), uri=True)
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        db.close()
    return int(version), frozenset(str(name) for (name,) in names)


def look(path: str) -> tuple[int, frozenset[str]]:
    """The file's `user_version` and its tables' names, read without writing (nor creating) anything.

    Raises:
        StoreError: No file is there, or it is not a SQLite database.
    """
    where = shown_path(path)
    if not Path(path).is_file():
        raise StoreError(f"no SQLite file at {where}")
    try:
        return _contents(path)
    except sqlite3.OperationalError as exc:  # a file it may not read, ...
        raise StoreError(f"cannot open SQLite store {where}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise not_a_store(where) from exc


def _foreign(names: frozenset[str]) -> frozenset[str]:
    """The tables of another program's file: all of them, when none is threadloom's; else none."""
    tables = frozenset(name for name in names if not name.startswith("sqlite_"))  # SQLite's own
    if STORE_TABLES <= tables or any(name.startswith(_OWN_PREFIX) for name in tables):
        return frozenset()
    return tables


def no_store(where: str, names: frozenset[str]) -> StoreError:
    """The error for a file without the store's tables: `foreign_tables` if it holds another program's, else `not_a_store`."""
    theirs = _foreign(names)
    return foreign_tables(where, theirs) if theirs else not_a_store(where)


def refuse_foreign(path: str) -> None:
    """Refuse, before anything writes to it, a file that holds tables and none of threadloom's.

    The store's tables have plain names (`threads`, `events`): made in another program's file they
    would sit among its tables, or collide with them. A new or empty file, a store, and a file of
    only the server's `threadloom_` tables may be made a store (or get the server's tables).

    Raises:
        StoreError: The file holds another program's tables, cannot be read, or is not a SQLite database.
    """
    if not Path(path).is_file():
        return  # nothing there yet: the connection creates it
    try:
        _, names = _contents(path)
    except sqlite3.DatabaseError as exc:  # a file it may not read, or not a database
        raise StoreError(f"cannot open SQLite store {shown_path(path)}: {exc}") from exc
    theirs = _foreign(names)
    if theirs:
        raise foreign_tables(shown_path(path), theirs)


def check(path: str, migrations: tuple[str, ...]) -> None:
    """Refuse a file that is not a store of these migrations, looking without changing it (see `look`).

    Raises:
        StoreError: No file, not a SQLite database, no store's tables, or a store of another schema.
    """
    version, names = look(path)
    where = shown_path(path)
    if version == 0 or not STORE_TABLES <= names:
        raise no_store(where, names)
    problem = unusable_schema(where, version, len(migrations))
    if problem is not None:
        raise problem


def migrate(db: sqlite3.Connection, migrations: tuple[str, ...], path: str) -> None:
    """Apply the migrations the database at `path` lacks, in one transaction.

    Raises:
        StoreError: The database was written by a newer threadloom (it has more migrations).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > len(migrations):
            raise StoreError(f"{path!r} has schema {version}; this threadloom knows {len(migrations)}")
        for number, script in enumerate(migrations[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def use_wal(db: sqlite3.Connection, seconds: float) -> None:
    """`PRAGMA journal_mode=WAL`, tried again for up to `seconds` while another connection holds the lock it needs.

    Switching a file to WAL takes an exclusive lock; two openers of a new file at once may find it
    taken, and SQLite then answers "database is locked" at once, without waiting its busy timeout.
    """
    deadline, pause = time.monotonic() + seconds, 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
