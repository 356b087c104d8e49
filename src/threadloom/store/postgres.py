"""`PostgresStore` (`postgresql://...`): many workers on many machines, one database (extra `postgres`).

An append updates the thread's row only if it still has the version the writer extends (which locks
the row), checks the writer's lease, and writes only the new event rows, all in one transaction. A
step's append (a known thread, no idempotency key) is one statement, so one round trip: the pool's
connections are autocommit, and work of several statements opens a transaction of its own. A
worker's claim reads the claimed threads in the same statement, and the release after a run that
stopped its thread is folded into that run's last append: besides its appends, a worker's run costs
a share of one round trip.
Event data is stored as text, not `jsonb`, so that a thread reads back byte for byte as it was
written (jsonb reorders keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, LiteralString

try:
    import psycopg
    from psycopg import errors
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("PostgresStore needs the `postgres` extra: pip install 'threadloom[postgres]'") from exc

from ..events import ERROR, MODEL_RECORD_EVENTS
from ..exceptions import (
    AlreadyDelivered,
    IdempotencyKeyReused,
    LeaseLost,
    StoreError,
    ThreadDecodeError,
    ThreadNotFound,
    VersionConflict,
)
from ..state import Status, Usage
from ..thread import Thread
from ._appends import check_version, key_scope, not_storable, summarise
from ._codec import SCHEMA_VERSION, decode_thread, encode_event, encode_metadata
from ._leases import WorkSignal, release_all
from .base import ANSWERS, STATUSES, StoreCounts, ThreadSummary, masked, masked_url

__all__ = ["CHANNEL", "MIGRATIONS", "PostgresStore"]

log = logging.getLogger("threadloom.store")

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

_INSERT_BATCH = 1000  # event rows per INSERT statement

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


@functools.cache
def _step_sql(rows: int) -> str:
    """A step's append of `rows` events as one statement (see `PostgresStore._step`)."""
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


def _utc_text(column: LiteralString) -> LiteralString:
    """SQL for a timestamptz column as ISO 8601 text in UTC, whatever the session's DateStyle and TimeZone.

    psycopg's own timestamptz loader refuses some DateStyles (`SQL`, `German`), and costs more than
    `datetime.fromisoformat` on this text.
    """
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


_CLAIM_EVENTS = 200  # `claim_threads` reads the events of threads up to this long; longer ones are loaded

_MIGRATION_LOCK = 0x7468726561646C6F  # "threadlo": one migrator at a time across processes
CHANNEL = "threadloom_ready"
"""The NOTIFY channel: a thread became claimable (`ready`, no live lease). The payload is its id."""


class PostgresStore:
    """Threads in PostgreSQL, shared by any number of processes. Build one with `await PostgresStore.open(url)`."""

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], url: str) -> None:
        """Wrap an open pool; use `PostgresStore.open(url)` instead."""
        self._pool = pool
        self.url = url
        self._work = WorkSignal()
        self._listener: asyncio.Task[None] | None = None
        # (thread, owner) whose lease that owner's last append ended (see `_step`); `release` skips them.
        self._ended: set[tuple[str, str]] = set()

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10, connect_timeout: float = 5) -> PostgresStore:
        """Connect, apply pending migrations and return the store.

        Args:
            url: A libpq URL. A schema other than `public`: `?options=-csearch_path%3Dmyschema`.
            max_connections: The pool's size.
            connect_timeout: Seconds to wait for the server before giving up.

        Raises:
            StoreError: The database cannot be reached (the server's reason in one line, the URL's
                password masked), or was written by a newer threadloom.
        """
        # One connection first: a server that cannot be reached fails here at once with its reason
        # (the pool would retry until its timeout and then say only "pool initialization incomplete").
        try:
            first = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise StoreError(f"cannot open PostgreSQL store {masked_url(url)}: {masked(reason, url)}") from None
        try:
            async with first.transaction():
                await _migrate(first)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store {masked_url(url)}: {masked(str(exc), url)}") from None
        finally:
            await first.close()
        # Autocommit: a statement on its own is its own transaction (one round trip, no BEGIN and
        # COMMIT of its own); work of several statements opens `conn.transaction()`.
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True},
            check=_check_if_idle,
            reset=_note_return,
        )
        try:
            await pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, TimeoutError, PoolTimeout) as exc:
            await pool.close()
            raise StoreError(f"cannot open PostgreSQL store {masked_url(url)}: {masked(str(exc), url)}") from None
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    async def append(
        self,
        thread: Thread,
        *,
        after: int,
        idempotency_key: str | None = None,
        request: str | None = None,
        owner: str | None = None,
        sync: bool = True,
    ) -> None:
        """See `ThreadStore.append`; `sync` changes nothing (commits follow the server's `synchronous_commit`)."""
        try:
            await self._append(thread, after, idempotency_key, request, owner)
        except UnicodeEncodeError as exc:  # a value psycopg cannot send
            raise not_storable(thread, exc) from exc

    async def _append(
        self, thread: Thread, after: int, idempotency_key: str | None, request: str | None, owner: str | None
    ) -> None:
        if owner is not None:
            self._ended.discard((thread.id, owner))
        try:
            events = enumerate(thread.events[after:], start=after + 1)
            rows = [(thread.id, seq, *encode_event(e)) for seq, e in events]
        except ValueError as exc:  # json.dumps: an int too long to write
            raise not_storable(thread, exc) from exc
        now = datetime.now(UTC)
        summary = summarise(thread, now)
        if after > 0 and idempotency_key is None and 0 < len(rows) <= _INSERT_BATCH:
            check_version(thread, after, after)  # `after` within the writer's own thread
            await self._step(thread, after, owner, rows, summary)
            return
        scope = key_scope(thread, after)
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
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

    async def _step(
        self, thread: Thread, after: int, owner: str | None, rows: list[tuple[Any, ...]], summary: ThreadSummary
    ) -> None:
        """A step's append (a known thread, no key, one batch): one statement, so one round trip.

        The summary's update names the version (and the lease holder), which locks the row; the
        events are inserted only if it matched, and the NOTIFY sent only if the thread became
        claimable. Nothing matched: one more query says why (the version, or the lease).
        """
        # A worker's append that stops the thread (done, waiting for a person, asleep) also ends its
        # lease's time, keeping its name for the fencing check: the thread is claimable as soon as it
        # is ready again, and the worker's `release` right after needs no round trip (`_ended`).
        ends = owner is not None and summary.status != "ready"
        params: list[Any] = [summary.status, summary.events, summary.wake_at, summary.retry_at, summary.updated_at]
        params += [ends, thread.id]
        params += [after, owner, owner, *(v for r in rows for v in r), summary.status == "ready", CHANNEL, thread.id]
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                # A worker's own steps (it holds the lease) announce nothing: no one else could claim
                # the thread. A NOTIFY is delivered at commit, to every listening worker.
                await cur.execute(_step_sql(len(rows)), params)  # pyright: ignore[reportArgumentType] - placeholders only
                if await cur.fetchone() is not None:
                    if owner is not None and ends:
                        if len(self._ended) > 10_000:  # owners that never release: forget (a release then asks)
                            self._ended.clear()
                        self._ended.add((thread.id, owner))
                    return
                await cur.execute(
                    "SELECT events, lease_owner FROM threadloom_threads WHERE thread_id = %s", (thread.id,)
                )
                found = await cur.fetchone()
        except (errors.UntranslatableCharacter, errors.CharacterNotInRepertoire) as exc:
            raise not_storable(thread, exc) from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        check_version(thread, after, None if found is None else int(found[0]))
        if owner is not None and found is not None and found[1] != owner:
            raise LeaseLost(thread.id, owner=owner)
        raise VersionConflict(thread.id, expected=after, actual=after)  # changed meanwhile

    async def load(self, thread_id: str) -> Thread:
        """See `ThreadStore.load`."""
        try:
            async with self._pool.connection() as conn, psycopg.AsyncClientCursor(conn) as cur:
                await cur.execute(_LOAD, (thread_id, SCHEMA_VERSION, thread_id))  # both results arrive
                head = await cur.fetchone()
                if head is None:
                    raise ThreadNotFound(thread_id)
                cur.nextset()
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        return decode_thread(thread_id, head[0], rows)

    async def list(
        self,
        *,
        status: Status | None = None,
        agent: str | None = None,
        updated_after: datetime | None = None,
        wake_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[ThreadSummary]:
        """See `ThreadStore.list`."""
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
        sql = f"SELECT thread_id, status, agent, parent_id, events, {_utc_text('updated_at')}, {_utc_text('wake_at')},"
        sql += f" {_utc_text('retry_at')}, unreadable"
        sql += " FROM threadloom_threads"
        sql += (
            " WHERE " + " AND ".join(where) if where else ""
        ) + f" ORDER BY updated_at{order}, thread_id{order} LIMIT %s"
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
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

    async def counts(self) -> StoreCounts:
        """See `ThreadStore.counts`."""
        threads = dict.fromkeys(STATUSES, 0)
        answered, waited = 0, 0.0
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(_COUNT_STATUSES)
                threads.update(await cur.fetchall())
                await cur.execute(_COUNT_USAGE, (sorted(MODEL_RECORD_EVENTS),))
                usage = {r[0]: Usage(int(r[2]), int(r[3]), int(r[4]), r[1]) for r in await cur.fetchall()}
                await cur.execute(_COUNT_TOOL_ERRORS, (ERROR,))
                (tool_errors,) = await cur.fetchone() or (0,)
                for answer, (key, types) in sorted(ANSWERS.items()):
                    await cur.execute(_COUNT_WAITS, (key, sorted(types), answer))
                    count, seconds = await cur.fetchone() or (0, 0)
                    answered, waited = answered + count, waited + float(seconds)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        return StoreCounts(threads, usage, tool_errors, answered, waited)

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """See `ThreadStore.find_key`."""
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(
                    "SELECT thread_id, request FROM threadloom_idempotency_keys"
                    " WHERE key = %s AND (%s::text IS NULL OR scope = %s) LIMIT 1",
                    (idempotency_key, scope, scope),
                )
                row = await cur.fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        if row is None:
            return None
        if request is not None and row[1] is not None and row[1] != request:
            raise IdempotencyKeyReused(idempotency_key, thread_id=str(row[0]))
        return str(row[0])

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """See `ThreadStore.claim`. `FOR UPDATE SKIP LOCKED` lets many workers claim without waiting on each other."""
        serves = None if agents is None else list(agents)
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:  # one statement: atomic
                await cur.execute(_CLAIM + " RETURNING thread_id", (owner, lease_seconds, serves, serves, limit))
                claimed = [str(r[0]) for r in await cur.fetchall()]
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        self._ended.difference_update((thread_id, owner) for thread_id in claimed)  # leased anew
        return claimed

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """See `ThreadStore.claim_threads`: the claim and the claimed threads' events in one statement.

        Events are read in the statement's snapshot; a thread appended to after that (a race of a few
        microseconds) has fewer event rows than its row counts, and is loaded again. So is a thread
        longer than `_CLAIM_EVENTS`, which `load` reads faster than one big result would.
        """
        # A thread's id, metadata and event count come on its first row only (NULLs cost the driver
        # nothing); times as ISO 8601 text in UTC, which `decode_events` parses fastest.
        first = "coalesce(e.seq, 1) = 1"
        sql = (
            f"WITH c AS ({_CLAIM} RETURNING thread_id, metadata, events) SELECT"
            f" CASE WHEN {first} THEN c.thread_id END, CASE WHEN {first} THEN c.metadata END,"
            f" CASE WHEN {first} THEN c.events END, e.event_id, e.type, e.data,"
            f" {_utc_text('e.at')}, NULLIF(e.schema_version, %s)"
            " FROM c LEFT JOIN threadloom_events e ON e.thread_id = CASE WHEN c.events <= %s THEN c.thread_id END"
            " ORDER BY c.thread_id, e.seq"
        )
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:  # one statement: atomic
                serves = None if agents is None else list(agents)
                await cur.execute(sql, (owner, lease_seconds, serves, serves, limit, SCHEMA_VERSION, _CLAIM_EVENTS))
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        claimed: list[tuple[str, str, int, list[tuple[Any, ...]]]] = []
        for row in rows:
            if row[0] is not None:
                claimed.append((row[0], row[1], row[2], []))
                self._ended.discard((row[0], owner))  # leased anew
            if row[3] is not None:
                claimed[-1][3].append(row[3:])
        threads: list[Thread] = []
        for thread_id, metadata, events, event_rows in claimed:
            try:
                if len(event_rows) == events:
                    threads.append(decode_thread(thread_id, metadata, event_rows))
                else:  # long, or appended to since the statement's snapshot
                    threads.append(await self.load(thread_id))
            except ThreadDecodeError:
                await release_all(self, [c[0] for c in claimed if c[0] != thread_id], owner)
                raise
        return threads

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """See `ThreadStore.set_aside`."""
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(
                    "UPDATE threadloom_threads SET unreadable = %s, lease_owner = NULL, lease_expires = NULL"
                    " WHERE thread_id = %s",
                    (reason, thread_id),
                )
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """See `ThreadStore.renew`."""
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(
                    "UPDATE threadloom_threads SET lease_expires = CASE WHEN lease_expires IS NULL THEN NULL"
                    " ELSE now() + make_interval(secs => %s) END"
                    " WHERE thread_id = %s AND lease_owner = %s AND (lease_expires IS NULL OR lease_expires > now())",
                    (lease_seconds, thread_id, owner),
                )
                return cur.rowcount == 1
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    async def release(self, thread_id: str, owner: str) -> None:
        """See `ThreadStore.release`."""
        if (thread_id, owner) in self._ended:
            # The owner's last append stopped the thread and ended the lease's time: claiming it (once
            # it is ready again) and its NOTIFY are as after a release, so none is needed.
            self._ended.discard((thread_id, owner))
            return
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                # One statement: the NOTIFY (only if the released thread is ready) commits with it.
                await cur.execute(
                    "WITH r AS (UPDATE threadloom_threads SET lease_owner = NULL, lease_expires = NULL"
                    " WHERE thread_id = %s AND lease_owner = %s RETURNING status)"
                    " SELECT pg_notify(%s, %s)::text FROM r WHERE status = 'ready'",
                    (thread_id, owner, CHANNEL, thread_id),
                )
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    async def wait_for_work(self, seconds: float) -> None:
        """See `ThreadStore.wait_for_work`: LISTEN/NOTIFY on a connection of its own, polling as the fallback.

        The first call starts listening and returns at once, so the caller's next look for work
        covers anything that became claimable before the LISTEN. A lost listening connection is
        reopened at the next call; until then the worker polls every `seconds`.
        """
        if self._listener is None or self._listener.done():
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                await conn.execute("LISTEN threadloom_ready")  # CHANNEL
            except psycopg.Error as exc:
                log.warning("cannot LISTEN for work on PostgreSQL (polling instead): %s", masked(str(exc), self.url))
                await asyncio.sleep(seconds)
                return
            self._listener = asyncio.create_task(self._listen(conn))
            return
        await self._work.wait(seconds)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            async for _ in conn.notifies():
                self._work.set()
        except psycopg.Error as exc:
            log.warning("lost the PostgreSQL LISTEN connection (polling until it is back): %s", exc)
        finally:
            self._work.set()  # whoever waits looks for work now, and the next wait listens again
            await conn.close()

    async def aclose(self) -> None:
        """Stop listening and close the connection pool."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._pool.close()


_IDLE_CHECK_SECONDS = 1.0  # a connection idle this long is checked before it is handed out
_returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _note_return(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's `reset`: note when the connection went idle."""
    _returned[conn] = time.monotonic()


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's `check`: a connection idle for a while (the server may have dropped it) answers an empty query first.

    A connection that fails it is thrown away and another one handed out, so a connection dropped
    between two calls (a restart, an idle timeout) costs the caller nothing; a busy worker's
    connections, never idle that long, cost no extra round trip.
    """
    if time.monotonic() - _returned.get(conn, 0.0) > _IDLE_CHECK_SECONDS:
        await conn.execute("")


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await cur.execute("CREATE TABLE IF NOT EXISTS threadloom_schema (version INTEGER NOT NULL)")
        await cur.execute("SELECT version FROM threadloom_schema")
        row = await cur.fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StoreError(f"the database has threadloom schema {version}; this threadloom knows {len(MIGRATIONS)}")
        for script in MIGRATIONS[version:]:
            for statement in filter(str.strip, script.split(";")):
                await cur.execute(statement.encode())
        if row is None:
            await cur.execute("INSERT INTO threadloom_schema VALUES (%s)", (len(MIGRATIONS),))
        else:
            await cur.execute("UPDATE threadloom_schema SET version = %s", (len(MIGRATIONS),))
