"""The SQLite store's tables, and the forward-only migrations that make them."""

from __future__ import annotations

import sqlite3
import time

from ..exceptions import StoreError

__all__ = ["MIGRATIONS", "migrate", "use_wal"]

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
