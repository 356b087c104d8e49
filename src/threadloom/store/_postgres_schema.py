"""The PostgreSQL store's tables, the forward-only migrations that make them, and the channel it notifies on."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..exceptions import StoreError
from ._schemas import not_a_store, unusable_schema

__all__ = ["CHANNEL", "MIGRATIONS", "Pool", "check", "migrate"]

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
"""The store's pool: autocommit connections (work of several statements opens a transaction)."""

MIGRATIONS: tuple[str, ...] = (
    # 1: threads (what the runtime queries), events (one row each), idempotency keys.
    """
    CREATE TABLE threadloom_threads (
        thread_id TEXT PRIMARY KEY,
        agent TEXT,
        parent_id TEXT,
        status TEXT NOT NULL,
        events INTEGER NOT NULL,
        wake_at TIMESTAMPTZ,
        lease_owner TEXT,
        lease_expires TIMESTAMPTZ,
        metadata TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX threadloom_threads_status ON threadloom_threads (status, updated_at);
    CREATE INDEX threadloom_threads_agent ON threadloom_threads (agent, updated_at);
    CREATE TABLE threadloom_events (
        thread_id TEXT NOT NULL REFERENCES threadloom_threads (thread_id),
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        schema_version INTEGER NOT NULL,
        PRIMARY KEY (thread_id, seq)
    );
    CREATE TABLE threadloom_idempotency_keys (
        key TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: find due sleepers without reading every sleeping thread.
    """
    CREATE INDEX threadloom_threads_wake ON threadloom_threads (wake_at) WHERE status = 'sleeping';
    """,
    # 3: a failed run's retry time and threads set aside as unreadable (both skipped by a claim);
    # idempotency keys scoped to their thread (a launch's to its agent), with the request they carried.
    # A key stored with its thread's creation was a launch's.
    """
    ALTER TABLE threadloom_threads ADD COLUMN retry_at TIMESTAMPTZ;
    ALTER TABLE threadloom_threads ADD COLUMN unreadable TEXT;
    ALTER TABLE threadloom_idempotency_keys ADD COLUMN scope TEXT;
    ALTER TABLE threadloom_idempotency_keys ADD COLUMN request TEXT;
    UPDATE threadloom_idempotency_keys k SET scope = CASE WHEN k.created_at = t.created_at
        THEN 'launch:' || coalesce(t.agent, '') ELSE 'thread:' || k.thread_id END
        FROM threadloom_threads t WHERE t.thread_id = k.thread_id;
    UPDATE threadloom_idempotency_keys SET scope = 'thread:' || thread_id WHERE scope IS NULL;
    ALTER TABLE threadloom_idempotency_keys ALTER COLUMN scope SET NOT NULL;
    ALTER TABLE threadloom_idempotency_keys DROP CONSTRAINT threadloom_idempotency_keys_pkey;
    ALTER TABLE threadloom_idempotency_keys ADD PRIMARY KEY (scope, key);
    """,
)
"""Forward-only schema migrations; `threadloom_schema.version` records how many are applied."""

CHANNEL = "threadloom_ready"
"""The NOTIFY channel: a thread became claimable (`ready`, no live lease). The payload is its id."""

_MIGRATION_LOCK = 0x7468726561646C6F  # "threadlo": one migrator at a time across processes


async def migrate(conn: psycopg.AsyncConnection[Any], migrations: tuple[str, ...]) -> None:
    """Apply the migrations the database lacks, inside the caller's transaction, one migrator at a time.

    Raises:
        StoreError: The database was written by a newer threadloom (it has more migrations).
    """
    async with conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await cur.execute("CREATE TABLE IF NOT EXISTS threadloom_schema (version INTEGER NOT NULL)")
        await cur.execute("SELECT version FROM threadloom_schema")
        row = await cur.fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(migrations):
            raise StoreError(f"the database has threadloom schema {version}; this threadloom knows {len(migrations)}")
        for script in migrations[version:]:
            for statement in filter(str.strip, script.split(";")):
                await cur.execute(statement.encode())
        if row is None:
            await cur.execute("INSERT INTO threadloom_schema VALUES (%s)", (len(migrations),))
        else:
            await cur.execute("UPDATE threadloom_schema SET version = %s", (len(migrations),))


async def check(conn: psycopg.AsyncConnection[Any], migrations: tuple[str, ...], where: str) -> None:
    """Refuse a database that holds no store of these migrations, reading only (nothing is created).

    Raises:
        StoreError: No `threadloom_schema` table on the search path (an empty database too), or a
            store of another schema.
    """
    async with conn.cursor() as cur:
        await cur.execute("SELECT to_regclass('threadloom_schema') IS NOT NULL")
        found = await cur.fetchone()
        if found is None or not found[0]:
            raise not_a_store(where)
        await cur.execute("SELECT version FROM threadloom_schema")
        row = await cur.fetchone()
    problem = unusable_schema(where, 0 if row is None else int(row[0]), len(migrations))
    if problem is not None:
        raise problem
