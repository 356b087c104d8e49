"""What the PostgreSQL store reads: a thread, pages of summaries, an idempotency key, the totals of `counts`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

import psycopg

from ..events import ERROR, MODEL_RECORD_EVENTS
from ..exceptions import StoreError, ThreadNotFound
from ..state import Status, Usage
from ..thread import Thread
from ._codec import SCHEMA_VERSION, decode_thread
from ._postgres_schema import Pool
from .base import ANSWERS, STATUSES, StoreCounts, ThreadSummary

__all__ = ["counts", "find_key", "load", "summaries", "utc_text"]


# A load is one round trip: two statements in one simple query, which PostgreSQL runs as one
# transaction, the first setting for that transaction only (`set_config(..., true)`) what the second
# needs. `enable_sort` off, since the primary key (thread_id, seq) gives the rows in order, but a
# planner that expects a few rows per thread would rather sort them (a thread of 10,000 events then
# costs a 2 MB sort); times as ISO 8601 text in UTC, which Python parses for less than psycopg's
# timestamptz loader costs, whatever the session's own settings. The schema version is NULL when it
# is the current one (a NULL costs the driver nothing): see `decode_events`. Several statements in
# one query take their parameters bound by the client (`psycopg.AsyncClientCursor`).
_LOAD = (
    "SELECT metadata, set_config('enable_sort', 'off', true), set_config('DateStyle', 'ISO', true),"
    " set_config('TimeZone', 'UTC', true) FROM threadloom_threads WHERE thread_id = %s;"
    " SELECT event_id, type, data, at::text, NULLIF(schema_version, %s) FROM threadloom_events"
    " WHERE thread_id = %s ORDER BY seq"
)


def utc_text(column: LiteralString) -> LiteralString:
    """SQL for a timestamptz column as ISO 8601 text in UTC, whatever the session's DateStyle and TimeZone.

    psycopg's own timestamptz loader refuses some DateStyles (`SQL`, `German`), and costs more than
    `datetime.fromisoformat` on this text.
    """
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


async def load(pool: Pool, thread_id: str) -> Thread:
    """The thread's row and its events, in one round trip (see `ThreadStore.load`)."""
    try:
        async with pool.connection() as conn, psycopg.AsyncClientCursor(conn) as cur:
            await cur.execute(_LOAD, (thread_id, SCHEMA_VERSION, thread_id))  # both results arrive
            head = await cur.fetchone()
            if head is None:
                raise ThreadNotFound(thread_id)
            cur.nextset()
            rows = await cur.fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    return decode_thread(thread_id, head[0], rows)


async def summaries(
    pool: Pool,
    status: Status | None,
    agent: str | None,
    updated_after: datetime | None,
    wake_before: datetime | None,
    before: tuple[datetime, str] | None,
    newest_first: bool,
    limit: int,
) -> list[ThreadSummary]:
    """The summaries `ThreadStore.list` asks for."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("status = %s", status),
        ("agent = %s", agent),
        ("updated_at > %s", updated_after),
        ("wake_at <= %s", wake_before),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if before is not None:
        where.append("(updated_at, thread_id) < (%s, %s)")
        params += list(before)
    order = " DESC" if newest_first else ""
    sql = f"SELECT thread_id, status, agent, parent_id, events, {utc_text('updated_at')}, {utc_text('wake_at')},"
    sql += f" {utc_text('retry_at')}, unreadable"
    sql += " FROM threadloom_threads"
    sql += (
        " WHERE " + " AND ".join(where) if where else ""
    ) + f" ORDER BY updated_at{order}, thread_id{order} LIMIT %s"
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(sql, (*params, limit))  # pyright: ignore[reportArgumentType] - built above
            rows = await cur.fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    return [
        ThreadSummary(
            thread_id=r[0],
            status=r[1],
            agent=r[2],
            parent_id=r[3],
            events=r[4],
            updated_at=datetime.fromisoformat(r[5]),
            wake_at=None if r[6] is None else datetime.fromisoformat(r[6]),
            retry_at=None if r[7] is None else datetime.fromisoformat(r[7]),
            unreadable=r[8],
        )
        for r in rows
    ]


async def find_key(pool: Pool, idempotency_key: str, scope: str | None) -> tuple[Any, ...] | None:
    """The thread a key was delivered to and the request it carried, in `scope` (None: any scope)."""
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT thread_id, request FROM threadloom_idempotency_keys"
                " WHERE key = %s AND (%s::text IS NULL OR scope = %s) LIMIT 1",
                (idempotency_key, scope, scope),
            )
            return await cur.fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc


def _json(column: LiteralString) -> LiteralString:
    """SQL for a data column as jsonb.

    jsonb refuses the escape of U+0000, which a text of JSON may hold: the escape of U+FFFD in its
    place keeps the text valid JSON (a backslash before it still escapes the same backslash).
    """
    return f"replace({column}, '\\u0000', '\\ufffd')::jsonb"


def _tokens(key: LiteralString) -> LiteralString:
    """SQL for a model record's token count as `record_usage` reads it: a positive integer, else 0."""
    number = f"jsonb_typeof(r -> '{key}') = 'number' AND r ->> '{key}' ~ '^[1-9][0-9]*$'"
    return f"sum(CASE WHEN {number} THEN (r ->> '{key}')::numeric ELSE 0 END)"


_COUNT_STATUSES = "SELECT status, count(*) FROM threadloom_threads GROUP BY status"
_COUNT_USAGE = (
    f"WITH m AS (SELECT {_json('data')} -> 'model' AS r FROM threadloom_events WHERE type = ANY(%s))"
    f" SELECT r ->> 'name', count(*), {_tokens('input_tokens')}, {_tokens('output_tokens')},"
    f" {_tokens('cached_tokens')} FROM m WHERE jsonb_typeof(r) = 'object' AND jsonb_typeof(r -> 'name') = 'string'"
    " GROUP BY 1"
)
_COUNT_TOOL_ERRORS = f"SELECT count(*) FROM threadloom_events WHERE type = %s AND {_json('data')} ->> 'source' = 'tool'"
# Each answer joined to the request it names (`ANSWERS`).
_COUNT_WAITS = (
    "SELECT count(*), coalesce(sum(extract(epoch FROM a.at - p.at)), 0) FROM threadloom_events a"
    f" JOIN threadloom_events p ON p.thread_id = a.thread_id AND p.event_id = {_json('a.data')} ->> %s"
    " AND p.type = ANY(%s) WHERE a.type = %s"
)


async def counts(pool: Pool) -> StoreCounts:
    """`StoreCounts` computed in the database (`count_threads` defines each number)."""
    threads = dict.fromkeys(STATUSES, 0)
    answered, waited = 0, 0.0
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(_COUNT_STATUSES)
            threads.update(await cur.fetchall())
            await cur.execute(_COUNT_USAGE, (sorted(MODEL_RECORD_EVENTS),))
            usage = {r[0]: Usage(int(r[2]), int(r[3]), int(r[4]), r[1]) for r in await cur.fetchall()}
            await cur.execute(_COUNT_TOOL_ERRORS, (ERROR,))
            (tool_errors,) = await cur.fetchone() or (0,)
            for answer, (key, types) in sorted(ANSWERS.items()):
                await cur.execute(_COUNT_WAITS, (key, sorted(types), answer))
                answers, seconds = await cur.fetchone() or (0, 0)
                answered, waited = answered + answers, waited + float(seconds)
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store: {exc}") from exc
    return StoreCounts(threads, usage, tool_errors, answered, waited)
