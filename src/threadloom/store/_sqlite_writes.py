"""What an append writes to the SQLite store: the thread's summary row and its new event rows, in one transaction.

A step's append (a known thread, no idempotency key) is three statements; any other append (a new
thread, a key) checks the key, the version and the lease first. Either takes the write lock up front
(`BEGIN IMMEDIATE`), so two processes never both read the same version and then both write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any, NamedTuple

from ..exceptions import AlreadyDelivered, IdempotencyKeyReused, LeaseLost, ThreadNotFound, VersionConflict
from ..thread import Thread
from ._appends import check_version, key_scope, not_storable, retry_time, summarise
from ._codec import encode_event, encode_metadata, format_time
from .base import ThreadSummary

__all__ = ["Append", "append_work"]

_STEP_ROWS = 100  # a step's append with at most this many events is one multi-row INSERT (999 parameters)
_STEP = (
    "UPDATE threads SET status = ?, events = ?, wake_at = ?, retry_at = ?, updated_at = ?"
    " WHERE thread_id = ? AND events = ? AND (? IS NULL OR lease_owner = ?)"
)

# About how many WAL pages a commit writes besides its events' data: the thread's row and its two
# indexes, and the events' leaf (measured: 5.3-5.4 on threads of 10 to 10,000 events).
_PAGES_A_COMMIT = 5
_PAGE_BYTES = 4096  # SQLite's default page size

Rows = list[tuple[Any, ...]]


class Append(NamedTuple):
    """An append's transaction, to run on a store's connection, and about how many WAL pages it writes."""

    run: Callable[[sqlite3.Connection], bool]
    pages: int


def append_work(
    thread: Thread, after: int, idempotency_key: str | None, request: str | None, owner: str | None
) -> Append:
    """The work of an append (see `ThreadStore.append`), to run on a store's connection.

    The work returns whether the thread is now claimable (`ready`, no live lease).

    Raises:
        NotStorable: An event holds a value JSON cannot write (an int too long).
        UserError: `after` is not within the writer's own thread.
    """
    try:
        events = enumerate(thread.events[after:], start=after + 1)
        rows = [(thread.id, seq, *encode_event(e)) for seq, e in events]
    except (ValueError, RecursionError) as exc:  # json.dumps: an int too long, or values nested too deep
        raise not_storable(thread, exc) from exc
    pages = _PAGES_A_COMMIT + sum(len(r[4]) for r in rows) // _PAGE_BYTES
    now = datetime.now(UTC)
    if after > 0 and idempotency_key is None and 0 < len(rows) <= _STEP_ROWS:
        check_version(thread, after, after)  # `after` within the writer's own thread
        # The summary's fields a step can change (`summarise`'s, without building the summary).
        wake_at, retry_at = _time(thread.state.wake_at), _time(retry_time(thread))
        params = [thread.status, len(thread), wake_at, retry_at, format_time(now), thread.id, after, owner, owner]
        return Append(partial(_step, thread.id, after, owner, params, rows), pages)
    summary = summarise(thread, now)
    key = None if idempotency_key is None else (key_scope(thread, after), idempotency_key, request)
    times = (_time(summary.wake_at), _time(summary.retry_at), format_time(now))
    return Append(partial(_write, thread, after, key, owner, summary, rows, times), pages)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _step(thread_id: str, after: int, owner: str | None, params: list[Any], rows: Rows, db: sqlite3.Connection) -> bool:
    """A step's append to a known thread without a key: three statements, in one transaction.

    The summary's update names the version and the lease holder; when it matched no row, one more
    query says why (the version, or the lease) and nothing is written. Whether the thread is now
    claimable is not read back: an append under its writer's lease leaves the thread the writer's
    (its release announces it), and any other says so when the thread is ready, which is early
    (allowed, `ThreadStore.wait_for_work`) only when someone else holds a lease on it.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute(_STEP, params).rowcount == 0:
            found = db.execute("SELECT events, lease_owner FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
            raise _refusal(thread_id, after, owner, found)
        db.execute(_insert(len(rows)), [v for r in rows for v in r])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return params[0] == "ready" and owner is None


@cache
def _insert(count: int) -> str:
    """The INSERT of `count` event rows in one statement."""
    return "INSERT INTO events VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * count)


def _refusal(thread_id: str, after: int, owner: str | None, found: tuple[Any, ...] | None) -> Exception:
    """Why a step's append matched no row: no such thread, another version, or another lease holder."""
    if found is None:
        return ThreadNotFound(thread_id)
    if found[0] != after:
        return VersionConflict(thread_id, expected=after, actual=found[0])
    return LeaseLost(thread_id, owner=owner or "")


def _write(
    thread: Thread,
    after: int,
    key: tuple[str, str, str | None] | None,
    owner: str | None,
    summary: ThreadSummary,
    rows: Rows,
    times: tuple[str | None, str | None, str],
    db: sqlite3.Connection,
) -> bool:
    """Any other append: the key (scope, key, request) is checked and kept, then the version and the lease."""
    wake_at, retry_at, now = times
    db.execute("BEGIN IMMEDIATE")
    try:
        if key is not None:
            scope, idempotency_key, request = key
            found = db.execute(
                "SELECT thread_id, request FROM idempotency_keys WHERE scope = ? AND key = ?", (scope, idempotency_key)
            )
            if (row := found.fetchone()) is not None:
                if request is not None and row[1] is not None and row[1] != request:
                    raise IdempotencyKeyReused(idempotency_key, thread_id=row[0])
                raise AlreadyDelivered(idempotency_key, thread_id=row[0])
            db.execute(
                "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)", (scope, idempotency_key, thread.id, request, now)
            )
        row = db.execute(
            "SELECT events, lease_expires, lease_owner FROM threads WHERE thread_id = ?", (thread.id,)
        ).fetchone()
        check_version(thread, after, None if row is None else row[0])
        if owner is not None and row is not None and row[2] != owner:
            raise LeaseLost(thread.id, owner=owner)
        leased = row is not None and row[1] is not None and row[1] > now
        if row is None:
            db.execute(
                "INSERT INTO threads (thread_id, agent, parent_id, status, events, wake_at, retry_at,"
                " metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    thread.id,
                    summary.agent,
                    summary.parent_id,
                    summary.status,
                    summary.events,
                    wake_at,
                    retry_at,
                    encode_metadata(thread),
                    now,
                    now,
                ),
            )
        else:
            db.execute(
                "UPDATE threads SET status = ?, events = ?, wake_at = ?, retry_at = ?, updated_at = ? WHERE thread_id = ?",
                (summary.status, summary.events, wake_at, retry_at, now, thread.id),
            )
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return summary.status == "ready" and not leased
