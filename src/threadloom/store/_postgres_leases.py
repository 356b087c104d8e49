"""The PostgreSQL store's leases: a claim (with the claimed threads' events), a renewal, a release, a thread set aside.

Each is one statement, so atomic without a transaction of its own (the pool's connections autocommit).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg

from ..exceptions import StoreError
from ._codec import SCHEMA_VERSION
from ._postgres_reads import utc_text
from ._postgres_schema import CHANNEL, Pool

__all__ = ["CLAIM_EVENTS", "Claimed", "claim", "claim_rows", "release", "renew", "set_aside"]


CLAIM_EVENTS = 200
"""`claim_rows` reads the events of threads up to this long; longer ones are loaded."""

Claimed = tuple[str, str, int, list[tuple[Any, ...]]]
"""A claimed thread as `claim_rows` read it: its id, metadata, event count, and event rows (or none)."""

# Lease the oldest runnable threads that no live lease holds (parameters: owner, seconds, the
# agents served or NULL for any, limit). `FOR UPDATE SKIP LOCKED`: workers claiming at once skip
# each other's picks instead of waiting.
_CLAIM = (
    "UPDATE threadloom_threads SET lease_owner = %s, lease_expires = now() + make_interval(secs => %s)"
    " WHERE thread_id IN (SELECT thread_id FROM threadloom_threads WHERE status = 'ready' AND unreadable IS NULL"
    " AND (lease_expires IS NULL OR lease_expires <= now()) AND (retry_at IS NULL OR retry_at <= now())"
    " AND (%s::text[] IS NULL OR agent = ANY(%s::text[])) ORDER BY updated_at LIMIT %s"
    " FOR UPDATE SKIP LOCKED)"
)

# The claim and the claimed threads' events in one statement. A thread's id, metadata and event
# count come on its first row only (NULLs cost the driver nothing); times as ISO 8601 text in UTC,
# which `decode_events` parses fastest.
_FIRST = "coalesce(e.seq, 1) = 1"
_CLAIM_ROWS = (
    f"WITH c AS ({_CLAIM} RETURNING thread_id, metadata, events) SELECT"
    f" CASE WHEN {_FIRST} THEN c.thread_id END, CASE WHEN {_FIRST} THEN c.metadata END,"
    f" CASE WHEN {_FIRST} THEN c.events END, e.event_id, e.type, e.data,"
    f" {utc_text('e.at')}, NULLIF(e.schema_version, %s)"
    " FROM c LEFT JOIN threadloom_events e ON e.thread_id = CASE WHEN c.events <= %s THEN c.thread_id END"
    " ORDER BY c.thread_id, e.seq"
)


async def claim(pool: Pool, owner: str, lease_seconds: float, limit: int, agents: Collection[str] | None) -> list[str]:
    """Lease the oldest runnable threads to `owner`; their ids (see `ThreadStore.claim`)."""
    serves = None if agents is None else list(agents)
    try:
        async with pool.connection() as conn, conn.cursor() as cur:  # one statement: atomic
            await cur.execute(_CLAIM + " RETURNING thread_id", (owner, lease_seconds, serves, serves, limit))
            return [str(r[0]) for r in await cur.fetchall()]
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc


async def claim_rows(
    pool: Pool, owner: str, lease_seconds: float, limit: int, agents: Collection[str] | None
) -> list[Claimed]:
    """`claim`, with each claimed thread's row and, for threads up to `CLAIM_EVENTS` long, its event rows.

    The events are read in the statement's snapshot: a thread appended to after it has fewer event
    rows than its count says.
    """
    try:
        async with pool.connection() as conn, conn.cursor() as cur:  # one statement: atomic
            serves = None if agents is None else list(agents)
            await cur.execute(_CLAIM_ROWS, (owner, lease_seconds, serves, serves, limit, SCHEMA_VERSION, CLAIM_EVENTS))
            rows = await cur.fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    claimed: list[Claimed] = []
    for row in rows:
        if row[0] is not None:
            claimed.append((row[0], row[1], row[2], []))
        if row[3] is not None:
            claimed[-1][3].append(row[3:])
    return claimed


async def renew(pool: Pool, thread_id: str, owner: str, lease_seconds: float) -> bool:
    """Extend `owner`'s lease unless it expired; a lease an append ended stays ended (see `ThreadStore.renew`)."""
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "UPDATE threadloom_threads SET lease_expires = CASE WHEN lease_expires IS NULL THEN NULL"
                " ELSE now() + make_interval(secs => %s) END"
                " WHERE thread_id = %s AND lease_owner = %s AND (lease_expires IS NULL OR lease_expires > now())",
                (lease_seconds, thread_id, owner),
            )
            return cur.rowcount == 1
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc


async def release(pool: Pool, thread_id: str, owner: str) -> None:
    """End `owner`'s lease, announcing the thread when it is ready."""
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            # One statement: the NOTIFY (only if the released thread is ready) commits with it.
            await cur.execute(
                "WITH r AS (UPDATE threadloom_threads SET lease_owner = NULL, lease_expires = NULL"
                " WHERE thread_id = %s AND lease_owner = %s RETURNING status)"
                " SELECT pg_notify(%s, %s)::text FROM r WHERE status = 'ready'",
                (thread_id, owner, CHANNEL, thread_id),
            )
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc


async def set_aside(pool: Pool, thread_id: str, reason: str) -> None:
    """Mark the thread unreadable and end any lease on it (see `ThreadStore.set_aside`)."""
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "UPDATE threadloom_threads SET unreadable = %s, lease_owner = NULL, lease_expires = NULL"
                " WHERE thread_id = %s",
                (reason, thread_id),
            )
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
