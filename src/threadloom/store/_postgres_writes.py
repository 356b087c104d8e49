"""What an append writes to the PostgreSQL store: the thread's summary row and its new event rows, in one transaction.

The summary's update names the version the writer extends, which locks the row, and checks the
writer's lease. A step's append (a known thread, no idempotency key) is one statement, so one round
trip; any other append (a new thread, a key) opens a transaction of its own.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors

from ..exceptions import AlreadyDelivered, IdempotencyKeyReused, LeaseLost, StoreError, VersionConflict
from ..thread import Thread
from ._appends import check_version, key_scope, not_storable, summarise
from ._codec import encode_event, encode_metadata
from ._postgres_schema import CHANNEL, Pool
from .base import ThreadSummary

__all__ = ["append"]

_INSERT_BATCH = 1000  # event rows per INSERT statement

Rows = list[tuple[Any, ...]]


async def append(
    pool: Pool, thread: Thread, after: int, idempotency_key: str | None, request: str | None, owner: str | None
) -> bool:
    """Write `thread.events[after:]` and the thread's summary (see `ThreadStore.append`).

    Returns:
        Whether the append ended `owner`'s lease: it stopped the thread (done, waiting for a person,
        asleep), so the lease's time ended with it, keeping the owner's name for the fencing check.
    """
    try:
        events = enumerate(thread.events[after:], start=after + 1)
        rows = [(thread.id, seq, *encode_event(e)) for seq, e in events]
    except (ValueError, RecursionError) as exc:  # json.dumps: an int too long, or values nested too deep
        raise not_storable(thread, exc) from exc
    now = datetime.now(UTC)
    summary = summarise(thread, now)
    if after > 0 and idempotency_key is None and 0 < len(rows) <= _INSERT_BATCH:
        check_version(thread, after, after)  # `after` within the writer's own thread
        return await _step(pool, thread, after, owner, rows, summary)
    scope = key_scope(thread, after)
    try:
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if idempotency_key is not None:
                await cur.execute(
                    "INSERT INTO threadloom_idempotency_keys (key, thread_id, created_at, scope, request)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING key",
                    (idempotency_key, thread.id, now, scope, request),
                )
                if await cur.fetchone() is None:
                    await cur.execute(
                        "SELECT thread_id, request FROM threadloom_idempotency_keys WHERE scope = %s AND key = %s",
                        (scope, idempotency_key),
                    )
                    first = await cur.fetchone()
                    if first is not None and request is not None and first[1] is not None and first[1] != request:
                        raise IdempotencyKeyReused(idempotency_key, thread_id=str(first[0]))
                    raise AlreadyDelivered(idempotency_key, thread_id=str(first[0]) if first else thread.id)
            if after > 0:
                check_version(thread, after, after)  # `after` within the writer's own thread
                # The version check and the summary's update are one statement, which locks the row.
                await cur.execute(
                    "UPDATE threadloom_threads SET status = %s, events = %s, wake_at = %s, retry_at = %s,"
                    " updated_at = %s WHERE thread_id = %s AND events = %s RETURNING lease_owner, lease_expires > now()",
                    (summary.status, summary.events, summary.wake_at, summary.retry_at, now, thread.id, after),
                )
                row = await cur.fetchone()
                if row is None:
                    await cur.execute("SELECT events FROM threadloom_threads WHERE thread_id = %s", (thread.id,))
                    found = await cur.fetchone()
                    check_version(thread, after, None if found is None else int(found[0]))
                    raise VersionConflict(thread.id, expected=after, actual=after)  # changed meanwhile
                if owner is not None and row[0] != owner:
                    raise LeaseLost(thread.id, owner=owner)  # raised inside the transaction: rolled back
                claimable = not row[1]
            else:
                await cur.execute("SELECT events FROM threadloom_threads WHERE thread_id = %s", (thread.id,))
                found = await cur.fetchone()
                check_version(thread, after, None if found is None else int(found[0]))
                await cur.execute(
                    "INSERT INTO threadloom_threads (thread_id, agent, parent_id, status, events, wake_at,"
                    " retry_at, metadata, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        thread.id,
                        summary.agent,
                        summary.parent_id,
                        summary.status,
                        summary.events,
                        summary.wake_at,
                        summary.retry_at,
                        encode_metadata(thread),
                        now,
                        now,
                    ),
                )
                claimable = True
            if summary.status == "ready" and claimable:
                # Delivered at commit, to every listening worker on every machine. A worker's own
                # steps (it holds the lease) announce nothing: no one else could claim the thread.
                await cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, thread.id))
            # Multi-row INSERTs (a step appends one row): executemany would enter pipeline mode,
            # more work for one row. Batches stay under PostgreSQL's 65,535 parameters.
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(batch))
                params = [v for r in batch for v in (*r[:5], datetime.fromisoformat(r[5]), r[6])]
                await cur.execute(f"INSERT INTO threadloom_events VALUES {values}", params)  # pyright: ignore[reportArgumentType] - placeholders only
    except errors.UniqueViolation as exc:
        # Two writers created the same thread at once; the other one won.
        raise VersionConflict(thread.id, expected=after, actual=-1) from exc
    except (errors.UntranslatableCharacter, errors.CharacterNotInRepertoire) as exc:
        raise not_storable(thread, exc) from exc
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    return False


@functools.cache
def _step_sql(rows: int) -> str:
    """A step's append of `rows` events as one statement (see `_step`)."""
    values = ", ".join(["(%s, %s::integer, %s, %s, %s, %s::timestamptz, %s::integer)"] * rows)
    return (
        "WITH up AS (UPDATE threadloom_threads SET status = %s, events = %s, wake_at = %s, retry_at = %s,"
        " updated_at = %s,"
        " lease_expires = CASE WHEN %s THEN NULL ELSE lease_expires END"
        " WHERE thread_id = %s AND events = %s AND (%s::text IS NULL OR lease_owner = %s)"
        " RETURNING lease_expires > now() AS leased),"
        " ins AS (INSERT INTO threadloom_events"
        f" SELECT v.* FROM (VALUES {values}) AS v WHERE EXISTS (SELECT FROM up))"
        " SELECT CASE WHEN %s AND leased IS NOT TRUE THEN pg_notify(%s, %s)::text END FROM up"
    )


async def _step(pool: Pool, thread: Thread, after: int, owner: str | None, rows: Rows, summary: ThreadSummary) -> bool:
    """A step's append (a known thread, no key, one batch): one statement, so one round trip.

    The summary's update names the version (and the lease holder), which locks the row; the
    events are inserted only if it matched, and the NOTIFY sent only if the thread became
    claimable. Nothing matched: one more query says why (the version, or the lease).
    """
    # A worker's append that stops the thread (done, waiting for a person, asleep) also ends its
    # lease's time, keeping its name for the fencing check until the worker's `release`: the
    # thread is claimable as soon as it is ready again.
    ends = owner is not None and summary.status != "ready"
    params: list[Any] = [summary.status, summary.events, summary.wake_at, summary.retry_at, summary.updated_at]
    params += [ends, thread.id]
    params += [after, owner, owner, *(v for r in rows for v in r), summary.status == "ready", CHANNEL, thread.id]
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            # A worker's own steps (it holds the lease) announce nothing: no one else could claim
            # the thread. A NOTIFY is delivered at commit, to every listening worker.
            await cur.execute(_step_sql(len(rows)), params)  # pyright: ignore[reportArgumentType] - placeholders only
            if await cur.fetchone() is not None:
                return ends
            await cur.execute("SELECT events, lease_owner FROM threadloom_threads WHERE thread_id = %s", (thread.id,))
            found = await cur.fetchone()
    except (errors.UntranslatableCharacter, errors.CharacterNotInRepertoire) as exc:
        raise not_storable(thread, exc) from exc
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    check_version(thread, after, None if found is None else int(found[0]))
    if owner is not None and found is not None and found[1] != owner:
        raise LeaseLost(thread.id, owner=owner)
    raise VersionConflict(thread.id, expected=after, actual=after)  # changed meanwhile
