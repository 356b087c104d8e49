"""`SQLiteStore` (`sqlite:///path.db`): the embedded default, stdlib sqlite3 in WAL mode.

Durability: `journal_mode=WAL` with `synchronous=FULL`. WAL lets readers (the CLI, a web inbox) read
while a worker appends; FULL syncs the WAL at every commit, so an append that returned survives a
power cut, not only a process crash. NORMAL would be faster but may lose the last commits on power
loss, and "nothing lost on a crash" is the point of this store. Appends take the write lock up
front (`BEGIN IMMEDIATE`) so two processes never both read the same version and then both write.

One exception, asked for by the caller: an append with `sync=False` (the runtime's for a tool result
its run goes on from) is committed with `synchronous=NORMAL`, i.e. without waiting for the disk. The
WAL is one file written in order, so the next FULL commit's sync (the run's next step, from any
connection) or a checkpoint puts it on disk too; until then a power cut (not a crash of the process)
may lose it, and only it and other unsynced appends after the last sync.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..events import ERROR, MODEL_RECORD_EVENTS
from ..exceptions import (
    AlreadyDelivered,
    IdempotencyKeyReused,
    LeaseLost,
    StoreError,
    ThreadNotFound,
    UserError,
    VersionConflict,
)
from ..state import Status, Usage
from ..thread import Thread
from ._appends import check_version, key_scope, not_storable, summarise
from ._codec import decode_thread, encode_event, encode_metadata, format_time, parse_time
from ._leases import WorkSignal, claim_then_load
from .base import ANSWERS, STATUSES, StoreCounts, ThreadSummary

__all__ = ["MIGRATIONS", "SQLiteStore"]

_T = TypeVar("_T")

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


_LOAD_EVENTS = "SELECT event_id, type, data, at, schema_version FROM events WHERE thread_id = ? ORDER BY seq"
_BUSY_MS = 30_000  # how long a write waits for another process's write lock
_STEP_ROWS = 100  # a step's append with at most this many events is one multi-row INSERT (999 parameters)
_STEP = (
    "UPDATE threads SET status = ?, events = ?, wake_at = ?, retry_at = ?, updated_at = ?"
    " WHERE thread_id = ? AND events = ? AND (? IS NULL OR lease_owner = ?) RETURNING status, lease_expires"
)


def _step(
    thread_id: str,
    after: int,
    owner: str | None,
    params: list[Any],
    rows: list[tuple[Any, ...]],
    db: sqlite3.Connection,
) -> bool:
    """A step's append to a known thread without a key: three statements, in one transaction.

    The summary's update names the version and the lease holder; when it matched no row, one more
    query says why (the version, or the lease) and nothing is written. Returns whether the thread is
    now claimable (`ready`, no live lease).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(_STEP, params).fetchone()
        if row is None:
            found = db.execute("SELECT events, lease_owner FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
            raise _refusal(thread_id, after, owner, found)
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        db.execute(f"INSERT INTO events VALUES {values}", [v for r in rows for v in r])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return row[0] == "ready" and (row[1] is None or row[1] <= params[4])


def _tokens(key: str) -> str:
    """SQL for a model record's token count as `record_usage` reads it: a positive integer, else 0."""
    value = f"json_extract(data, '$.model.{key}')"
    return f"sum(CASE WHEN json_type(data, '$.model.{key}') = 'integer' AND {value} > 0 THEN {value} ELSE 0 END)"


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


def _count(db: sqlite3.Connection) -> StoreCounts:
    """`StoreCounts` in one read transaction (`count_threads` defines each number)."""
    db.execute("BEGIN")
    try:
        threads = dict.fromkeys(STATUSES, 0)
        threads.update(db.execute("SELECT status, count(*) FROM threads GROUP BY status").fetchall())
        usage = {r[0]: Usage(r[2], r[3], r[4], r[1]) for r in db.execute(_COUNT_USAGE, _MODEL_TYPES).fetchall()}
        (tool_errors,) = db.execute(_COUNT_TOOL_ERRORS, (ERROR,)).fetchone()
        answered, waited = 0, 0.0
        for answer, (key, types) in sorted(ANSWERS.items()):
            sql = _COUNT_WAITS.format(", ".join("?" * len(types)))
            count, seconds = db.execute(sql, (key, *sorted(types), answer)).fetchone()
            answered, waited = answered + count, waited + seconds
    finally:
        db.execute("COMMIT")
    return StoreCounts(threads, usage, tool_errors, answered, waited)


class _Busy(Exception):
    """A write cannot run at once without waiting (`SQLiteStore._at_once`)."""


def _refusal(thread_id: str, after: int, owner: str | None, found: tuple[Any, ...] | None) -> Exception:
    """Why a step's append matched no row: no such thread, another version, or another lease holder."""
    if found is None:
        return ThreadNotFound(thread_id)
    if found[0] != after:
        return VersionConflict(thread_id, expected=after, actual=found[0])
    return LeaseLost(thread_id, owner=owner or "")


class SQLiteStore:
    """Threads in one SQLite file. Safe for several processes on one machine."""

    def __init__(self, path: str | Path = "threadloom.db", *, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> None:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        Args:
            path: The database file.
            synchronous: `FULL` (the default) syncs every commit to disk, so an append that returned
                survives a power cut; `NORMAL` syncs only at WAL checkpoints: an append then costs
                microseconds instead of a disk sync, and survives a crash of the process but not of
                the machine.

        Raises:
            StoreError: The file cannot be opened, or was written by a newer threadloom.
            UserError: `synchronous` is not `FULL` or `NORMAL`.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise UserError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous
        # Whether the connection may still be in `synchronous=NORMAL` after an append with
        # `sync=False` (it is switched back at once; this is in case switching back failed).
        self._relaxed = False
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=_BUSY_MS / 1000
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            (self._checkpoint_pages,) = self._db.execute("PRAGMA wal_autocheckpoint").fetchone()
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        # One connection, used from a thread of its own one call at a time (a dedicated thread is a
        # shorter hop than `asyncio.to_thread`'s shared pool; the lock is for `sqlite3`'s sake), and
        # for a commit that does not wait for the disk, from the event loop's thread (`_at_once`).
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadloom-sqlite")
        # SQLite cannot tell other processes about an append: they poll. This process's own workers
        # hear of its appends at once.
        self._work = WorkSignal()

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path!r} has schema {version}; this threadloom knows {len(MIGRATIONS)}")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return work(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, locked)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    async def _write(self, work: Callable[[sqlite3.Connection], _T], *, sync: bool = True) -> _T:
        """`_run` for work that commits: with the store's `synchronous`, or without a disk sync when not `sync`."""
        relaxed = not sync and self._synchronous == "FULL"

        def switched(db: sqlite3.Connection) -> _T:
            # Switched under the lock, between two transactions (the setting cannot change inside
            # one), and back at once, so that no other write, whichever way it runs, skips the sync.
            if relaxed or self._relaxed:  # `self._relaxed`: switching back failed last time
                db.execute("PRAGMA synchronous=NORMAL" if relaxed else "PRAGMA synchronous=FULL")
                self._relaxed = relaxed
            if not relaxed:
                return work(db)
            try:
                return work(db)
            finally:
                db.execute("PRAGMA synchronous=FULL")
                self._relaxed = False

        if relaxed:
            try:
                return self._at_once(switched)
            except _Busy:
                pass  # the work wrote nothing: it waits its turn on the store's thread
        return await self._run(switched)

    def _at_once(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` on this thread (the event loop's), if it can run without waiting for anything.

        A commit that does not wait for the disk takes tens of microseconds, less than the hop to the
        store's thread and back. So it runs here, unless that would block: the connection is busy
        (the store's thread holds the lock), or another process holds the database's write lock
        (the busy timeout is 0 here), and then `_Busy` sends it to the store's thread. The WAL's
        automatic checkpoint, which syncs, is left to the next commit made there.

        Raises:
            _Busy: It would have to wait; it wrote nothing.
            StoreError: The database failed.
        """
        if not self._lock.acquire(blocking=False):
            raise _Busy
        try:
            db = self._db
            db.execute("PRAGMA busy_timeout = 0")
            db.execute("PRAGMA wal_autocheckpoint = 0")
            try:
                return work(db)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                    raise _Busy from exc  # BEGIN IMMEDIATE found the write lock taken, or work rolled back
                raise
            finally:
                db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
                db.execute(f"PRAGMA wal_autocheckpoint = {self._checkpoint_pages}")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        finally:
            self._lock.release()

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
        """See `ThreadStore.append`. With `sync=False` the commit does not wait for the disk (see above)."""
        try:
            await self._append(thread, after, idempotency_key, request, owner, sync)
        except (UnicodeEncodeError, OverflowError) as exc:  # a value sqlite3 cannot bind
            raise not_storable(thread, exc) from exc

    async def _append(
        self,
        thread: Thread,
        after: int,
        idempotency_key: str | None,
        request: str | None,
        owner: str | None,
        sync: bool,
    ) -> None:
        try:
            events = enumerate(thread.events[after:], start=after + 1)
            rows = [(thread.id, seq, *encode_event(e)) for seq, e in events]
        except ValueError as exc:  # json.dumps: an int too long to write
            raise not_storable(thread, exc) from exc
        now = datetime.now(UTC)
        summary = summarise(thread, now)
        wake_at = format_time(summary.wake_at) if summary.wake_at else None
        retry_at = format_time(summary.retry_at) if summary.retry_at else None
        if after > 0 and idempotency_key is None and 0 < len(rows) <= _STEP_ROWS:
            check_version(thread, after, after)  # `after` within the writer's own thread
            params = [summary.status, summary.events, wake_at, retry_at, format_time(now), thread.id, after, owner]
            params.append(owner)
            if await self._write(partial(_step, thread.id, after, owner, params, rows), sync=sync):
                self._work.set()
            return
        scope = key_scope(thread, after)

        def write(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                if idempotency_key is not None:
                    found = db.execute(
                        "SELECT thread_id, request FROM idempotency_keys WHERE scope = ? AND key = ?",
                        (scope, idempotency_key),
                    )
                    if (row := found.fetchone()) is not None:
                        if request is not None and row[1] is not None and row[1] != request:
                            raise IdempotencyKeyReused(idempotency_key, thread_id=row[0])
                        raise AlreadyDelivered(idempotency_key, thread_id=row[0])
                    db.execute(
                        "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                        (scope, idempotency_key, thread.id, request, format_time(now)),
                    )
                row = db.execute(
                    "SELECT events, lease_expires, lease_owner FROM threads WHERE thread_id = ?", (thread.id,)
                ).fetchone()
                check_version(thread, after, None if row is None else row[0])
                if owner is not None and row is not None and row[2] != owner:
                    raise LeaseLost(thread.id, owner=owner)
                leased = row is not None and row[1] is not None and row[1] > format_time(now)
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
                            format_time(now),
                            format_time(now),
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE threads SET status = ?, events = ?, wake_at = ?, retry_at = ?, updated_at = ?"
                        " WHERE thread_id = ?",
                        (summary.status, summary.events, wake_at, retry_at, format_time(now), thread.id),
                    )
                db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return summary.status == "ready" and not leased

        if await self._write(write, sync=sync):
            self._work.set()

    async def load(self, thread_id: str) -> Thread:
        """See `ThreadStore.load`."""

        def read(db: sqlite3.Connection) -> Thread:
            db.execute("BEGIN")
            try:
                head = db.execute("SELECT metadata FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
                if head is None:
                    raise ThreadNotFound(thread_id)
                rows = db.execute(_LOAD_EVENTS, (thread_id,)).fetchall()
            finally:
                db.execute("COMMIT")
            return decode_thread(thread_id, head[0], rows)

        return await self._run(read)

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
        sql = (
            "SELECT thread_id, status, agent, parent_id, events, updated_at, wake_at, retry_at, unreadable FROM threads"
        )
        sql += (
            " WHERE " + " AND ".join(where) if where else ""
        ) + f" ORDER BY updated_at{order}, thread_id{order} LIMIT ?"

        def read(db: sqlite3.Connection) -> list[ThreadSummary]:
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

        return await self._run(read)

    async def counts(self) -> StoreCounts:
        """See `ThreadStore.counts`."""
        return await self._run(_count)

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """See `ThreadStore.find_key`."""

        def read(db: sqlite3.Connection) -> tuple[str, str | None] | None:
            if scope is None:
                found = db.execute("SELECT thread_id, request FROM idempotency_keys WHERE key = ?", (idempotency_key,))
            else:
                found = db.execute(
                    "SELECT thread_id, request FROM idempotency_keys WHERE scope = ? AND key = ?",
                    (scope, idempotency_key),
                )
            return found.fetchone()

        row = await self._run(read)
        if row is None:
            return None
        if request is not None and row[1] is not None and row[1] != request:
            raise IdempotencyKeyReused(idempotency_key, thread_id=row[0])
        return str(row[0])

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """See `ThreadStore.claim`. `BEGIN IMMEDIATE` makes the pick and the lease one step across processes."""
        now = datetime.now(UTC)
        expires = format_time(now + timedelta(seconds=lease_seconds))
        serves = "" if agents is None else f" AND agent IN ({', '.join('?' * len(agents))})"

        def write(db: sqlite3.Connection) -> list[str]:
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT thread_id FROM threads WHERE status = 'ready' AND unreadable IS NULL"
                        " AND (lease_expires IS NULL OR lease_expires <= ?) AND (retry_at IS NULL OR retry_at <= ?)"
                        f"{serves} ORDER BY updated_at LIMIT ?",
                        (format_time(now), format_time(now), *(agents or ()), limit),
                    )
                ]
                db.executemany(
                    "UPDATE threads SET lease_owner = ?, lease_expires = ? WHERE thread_id = ?",
                    [(owner, expires, i) for i in ids],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ids

        return await self._write(write)

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """See `ThreadStore.claim_threads`."""
        return await claim_then_load(self, owner, lease_seconds=lease_seconds, limit=limit, agents=agents)

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """See `ThreadStore.set_aside`."""

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE threads SET unreadable = ?, lease_owner = NULL, lease_expires = NULL WHERE thread_id = ?",
                (reason, thread_id),
            )

        await self._write(write)

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """See `ThreadStore.renew`."""
        now = datetime.now(UTC)

        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE threads SET lease_expires = ? WHERE thread_id = ? AND lease_owner = ? AND lease_expires > ?",
                (format_time(now + timedelta(seconds=lease_seconds)), thread_id, owner, format_time(now)),
            )
            return cursor.rowcount == 1

        return await self._write(write)

    async def release(self, thread_id: str, owner: str) -> None:
        """See `ThreadStore.release`."""

        def write(db: sqlite3.Connection) -> bool:
            released = db.execute(
                "UPDATE threads SET lease_owner = NULL, lease_expires = NULL WHERE thread_id = ? AND lease_owner = ?"
                " RETURNING status",
                (thread_id, owner),
            ).fetchone()
            return released is not None and released[0] == "ready"

        if await self._write(write):
            self._work.set()

    async def wait_for_work(self, seconds: float) -> None:
        """See `ThreadStore.wait_for_work`."""
        await self._work.wait(seconds)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._run(lambda db: db.close())
        self._thread.shutdown(wait=False)
