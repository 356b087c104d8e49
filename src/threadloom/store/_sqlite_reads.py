"""What the SQLite store reads: a thread, pages of summaries, an idempotency key, the totals of `counts`.

Each function is work for the store's connection (`db`, its last parameter).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from ..events import ERROR, MODEL_RECORD_EVENTS
from ..exceptions import ThreadNotFound
from ..state import Status, Usage
from ..thread import Thread
from ._codec import SCHEMA_VERSION, decode_thread, format_time, parse_time
from .base import ANSWERS, STATUSES, StoreCounts, ThreadSummary

__all__ = ["counts", "find_key", "load", "summaries"]

# The current schema version reads as NULL: the driver makes None faster than an int (`decode_events`).
_LOAD_EVENTS = (
    f"SELECT event_id, type, data, at, NULLIF(schema_version, {SCHEMA_VERSION}) FROM events"
    " WHERE thread_id = ? ORDER BY seq"
)
_SUMMARIES = (
    "SELECT thread_id, status, agent, parent_id, events, updated_at, wake_at, retry_at, unreadable FROM threads"
)


def load(thread_id: str, db: sqlite3.Connection) -> Thread:
    """The thread's row and its events, read in one transaction (see `ThreadStore.load`)."""
    db.execute("BEGIN")
    try:
        head = db.execute("SELECT metadata FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
        if head is None:
            raise ThreadNotFound(thread_id)
        rows = db.execute(_LOAD_EVENTS, (thread_id,)).fetchall()
    finally:
        db.execute("COMMIT")
    return decode_thread(thread_id, head[0], rows)


def summaries(
    status: Status | None,
    agent: str | None,
    updated_after: datetime | None,
    wake_before: datetime | None,
    before: tuple[datetime, str] | None,
    newest_first: bool,
    limit: int,
    db: sqlite3.Connection,
) -> list[ThreadSummary]:
    """The summaries `ThreadStore.list` asks for."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("status = ?", status),
        ("agent = ?", agent),
        ("updated_at > ?", updated_after and format_time(updated_after)),
        ("wake_at <= ?", wake_before and format_time(wake_before)),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if before is not None:
        where.append("(updated_at, thread_id) < (?, ?)")
        params += [format_time(before[0]), before[1]]
    order = " DESC" if newest_first else ""
    sql = _SUMMARIES + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY updated_at{order}, thread_id{order} LIMIT ?"
    return [
        ThreadSummary(
            thread_id=r[0],
            status=r[1],
            agent=r[2],
            parent_id=r[3],
            events=r[4],
            updated_at=parse_time(r[5]),
            wake_at=parse_time(r[6]) if r[6] else None,
            retry_at=parse_time(r[7]) if r[7] else None,
            unreadable=r[8],
        )
        for r in db.execute(sql, (*params, limit)).fetchall()
    ]


def find_key(idempotency_key: str, scope: str | None, db: sqlite3.Connection) -> tuple[str, str | None] | None:
    """The thread a key was delivered to and the request it carried, in `scope` (None: any scope)."""
    if scope is None:
        found = db.execute("SELECT thread_id, request FROM idempotency_keys WHERE key = ?", (idempotency_key,))
    else:
        found = db.execute(
            "SELECT thread_id, request FROM idempotency_keys WHERE scope = ? AND key = ?", (scope, idempotency_key)
        )
    return found.fetchone()


def _tokens(key: str) -> str:
    """SQL for a model record's token count as `record_usage` reads it: a positive integer, else 0.

    `total()`, not `sum()`: its float cannot overflow where a sum of 64-bit counts would raise.
    """
    value = f"json_extract(data, '$.model.{key}')"
    return f"total(CASE WHEN json_type(data, '$.model.{key}') = 'integer' AND {value} > 0 THEN {value} ELSE 0 END)"


_MODEL_TYPES = tuple(sorted(MODEL_RECORD_EVENTS))
_COUNT_USAGE = (
    f"SELECT json_extract(data, '$.model.name'), count(*), {_tokens('input_tokens')}, {_tokens('output_tokens')},"
    f" {_tokens('cached_tokens')} FROM events WHERE type IN ({', '.join('?' * len(_MODEL_TYPES))})"
    " AND json_type(data, '$.model') = 'object' AND json_type(data, '$.model.name') = 'text' GROUP BY 1"
)
_COUNT_TOOL_ERRORS = "SELECT count(*) FROM events WHERE type = ? AND json_extract(data, '$.source') = 'tool'"
# Each answer joined to the request it names (`ANSWERS`); julianday reads times to the millisecond.
_COUNT_WAITS = (
    "SELECT count(*), coalesce(sum((julianday(a.at) - julianday(p.at)) * 86400.0), 0.0) FROM events a"
    " JOIN events p ON p.thread_id = a.thread_id AND p.event_id = json_extract(a.data, '$.' || ?) AND p.type IN ({})"
    " WHERE a.type = ?"
)


def counts(db: sqlite3.Connection) -> StoreCounts:
    """`StoreCounts` in one read transaction (`count_threads` defines each number)."""
    db.execute("BEGIN")
    try:
        threads = dict.fromkeys(STATUSES, 0)
        threads.update(db.execute("SELECT status, count(*) FROM threads GROUP BY status").fetchall())
        rows = db.execute(_COUNT_USAGE, _MODEL_TYPES).fetchall()
        usage = {r[0]: Usage(int(r[2]), int(r[3]), int(r[4]), r[1]) for r in rows}
        (tool_errors,) = db.execute(_COUNT_TOOL_ERRORS, (ERROR,)).fetchone()
        answered, waited = 0, 0.0
        for answer, (key, types) in sorted(ANSWERS.items()):
            sql = _COUNT_WAITS.format(", ".join("?" * len(types)))
            answers, seconds = db.execute(sql, (key, *sorted(types), answer)).fetchone()
            answered, waited = answered + answers, waited + seconds
    finally:
        db.execute("COMMIT")
    return StoreCounts(threads, usage, tool_errors, answered, waited)
