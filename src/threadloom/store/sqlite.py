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

Where the work runs: the store's own thread does every read, and every write that may wait (for the
disk, unless the appending task is alone on its loop: below; or for another process's write lock),
on its connection (a busy timeout of 30 s, the WAL's automatic checkpoint). A commit that waits for
neither takes tens of microseconds, less than the hop to that thread and back, so an append that
does not sync (every append of a `NORMAL` store, a `sync=False` one of a `FULL` store) commits on
the caller's thread instead, on a second connection set up for it once (`synchronous=NORMAL`, a busy
timeout of 0, no automatic checkpoint); if the write lock is taken, it goes to the store's thread
and waits its turn there. Its pages are counted, and every `wal_autocheckpoint` of them the store's
thread checkpoints the WAL, as SQLite's automatic checkpoint would, so the WAL stays bounded without
the event loop waiting for the disk.

A synced commit goes to the store's thread while the event loop has other tasks: made on the
caller's thread, its wait for the disk (0.3 ms on a fast disk, several on many) would hold up every
one of them. Measured with 8 runs on one loop: a 1 ms timer came 270-610 ms late (p99) instead of
6-12 ms, for as many steps a second or fewer (1,023 vs 1,012 on a fast disk, 204 vs 439 on a slow
one). When the appending task is its loop's only one (a run alone: `Runtime.run_thread`, a cron job,
a script), nothing can be held up, and the hop there and back (100-300 us of a step of ~0.6 ms)
is skipped: it commits at once on the second connection, switched to `synchronous=FULL` for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

from ..exceptions import IdempotencyKeyReused, StoreError, UserError
from ..state import Status
from ..thread import Thread
from . import _sqlite_leases, _sqlite_reads
from ._appends import not_storable
from ._leases import WorkSignal, claim_then_load
from ._sqlite_schema import MIGRATIONS, check, file_uri, migrate, refuse_foreign, use_wal
from ._sqlite_thread import StoreThread
from ._sqlite_writes import Append, append_work
from .base import StoreCounts, ThreadSummary

__all__ = ["MIGRATIONS", "SQLiteStore"]

_T = TypeVar("_T")

_BUSY_MS = 30_000  # how long a write waits for another process's write lock
_AT_ONCE_PAGES = 16  # a bigger append (~64 KiB of events) is written on the store's thread, the loop running on


def _connect(path: str, synchronous: str, busy_ms: int, *, create: bool = True) -> sqlite3.Connection:
    # Not `create`: a `mode=rw` URI, so that a file removed meanwhile is not made anew.
    where, uri = (path, False) if create else (file_uri(path, "rw"), True)
    db = sqlite3.connect(where, check_same_thread=False, isolation_level=None, timeout=busy_ms / 1000, uri=uri)
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class SQLiteStore:
    """Threads in one SQLite file. Safe for several processes on one machine."""

    def __init__(
        self,
        path: str | Path = "threadloom.db",
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        upgrade: bool = True,
    ) -> None:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        A file of another program's (tables, none of them threadloom's) is refused, not made a store.

        Args:
            path: The database file.
            synchronous: `FULL` (the default) syncs every commit to disk, so an append that returned
                survives a power cut; `NORMAL` syncs only at WAL checkpoints: an append then costs
                microseconds instead of a disk sync, and survives a crash of the process but not of
                the machine.
            upgrade: False opens the store as it is: a file that is not there, is not a store, or
                holds one of another schema is refused (looked at read-only, left unchanged),
                and nothing is created or migrated. For commands that only read or decide.

        Raises:
            StoreError: The file cannot be opened, or was written by a newer threadloom; with
                `upgrade`, it holds another program's tables and none of threadloom's (it is left
                unchanged); without, it is no store of this threadloom's schema.
            UserError: `synchronous` is not `FULL` or `NORMAL`.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise UserError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous
        # Whether the connection may still be in `synchronous=NORMAL` after an append with
        # `sync=False` (it is switched back at once; this is in case switching back failed).
        self._relaxed = False
        # Before anything writes: WAL mode alone would change a file.
        if upgrade:
            refuse_foreign(self.path)  # another program's file is not made a store
        else:
            check(self.path, MIGRATIONS)
        self._db, self._now = self._open(upgrade)
        # The store's thread, its connection's only user; `_now` is used one caller at a time.
        self._thread = StoreThread("threadloom-sqlite")
        self._now_lock = threading.Lock()
        self._unchecked = 0  # pages committed on `_now` since the store's thread last checkpointed
        self._checkpointing = False  # while it does
        # SQLite cannot tell other processes about an append: they poll. This process's own workers
        # hear of its appends at once.
        self._work = WorkSignal()

    def _open(self, upgrade: bool) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        """The store's connection (migrated if `upgrade`) and `_now`'s; on failure neither stays open.

        Reads `_checkpoint_pages` from the first.

        Raises:
            StoreError: The file cannot be opened, or its schema is a newer threadloom's.
        """
        opened: list[sqlite3.Connection] = []
        try:
            opened.append(_connect(self.path, self._synchronous, _BUSY_MS, create=upgrade))
            use_wal(opened[0], _BUSY_MS / 1000)
            (self._checkpoint_pages,) = opened[0].execute("PRAGMA wal_autocheckpoint").fetchone()
            if upgrade:
                migrate(opened[0], MIGRATIONS, self.path)  # MIGRATIONS as this module has it (tests replace it)
            # Commits made at once (`_at_once`): no wait, or a lone task.
            opened.append(_connect(self.path, "NORMAL", 0, create=upgrade))
            opened[1].execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException as exc:
            for db in opened:  # a connection left open would hold the file (and its WAL) until collected
                db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
            raise
        return opened[0], opened[1]

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await self._thread.run(partial(work, self._db))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    async def _write(self, work: Callable[[sqlite3.Connection], _T], *, sync: bool = True) -> _T:
        """`_run` for work that commits: with the store's `synchronous`, or without a disk sync when not `sync`."""
        relaxed = not sync and self._synchronous == "FULL"

        def switched(db: sqlite3.Connection) -> _T:
            # Switched between two transactions (the setting cannot change inside one), and back at
            # once, so that no other write skips the sync.
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

        return await self._run(switched)

    def _at_once(self, work: Append, *, synced: bool = False) -> bool | None:
        """An append committed on this thread (the event loop's) on `_now`; None if it would wait.

        `synced` commits it with `synchronous=FULL` (switched back to NORMAL after). It would wait
        when another thread of this process is using `_now`, or when the write lock is taken (by
        the store's thread, or another process: `_now`'s busy timeout is 0); it then wrote nothing.
        Every `wal_autocheckpoint` pages committed here, the store's thread checkpoints the WAL
        (`_now` does not, as a checkpoint syncs).

        Raises:
            StoreError: The database failed.
        """
        if self._checkpointing or not self._now_lock.acquire(blocking=False):
            return None
        try:
            if synced:
                self._now.execute("PRAGMA synchronous=FULL")
            try:
                claimable = work.run(self._now)
            finally:
                if synced:  # a failure to switch back leaves it syncing: slower, never less safe
                    with contextlib.suppress(sqlite3.Error):
                        self._now.execute("PRAGMA synchronous=NORMAL")
            self._unchecked += work.pages
            if self._unchecked >= self._checkpoint_pages:
                self._checkpointing = True
                self._thread.submit(self._checkpoint)
            return claimable
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None  # BEGIN IMMEDIATE found the write lock taken, or the work rolled back
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        finally:
            self._now_lock.release()

    def _checkpoint(self) -> None:
        """Fold the WAL into the database file as far as readers allow, on the store's thread.

        Meanwhile appends queue behind it here (`_checkpointing`): had one committed at once, the
        checkpoint would not have reached the WAL's end, and the next commit could not start it over.
        """
        try:
            with contextlib.suppress(sqlite3.Error):  # the next checkpoint, or the next commit here, tries again
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            self._unchecked = 0
            self._checkpointing = False

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
            work = append_work(thread, after, idempotency_key, request, owner)
            synced = sync and self._synchronous == "FULL"
            at_once = work.pages <= _AT_ONCE_PAGES and (not synced or _alone())
            claimable = self._at_once(work, synced=synced) if at_once else None
            if claimable is None:  # it waits for the disk beside other tasks, or a lock, or is too big
                claimable = await self._write(work.run, sync=sync)
        except (UnicodeEncodeError, OverflowError) as exc:  # a value sqlite3 cannot bind
            raise not_storable(thread, exc) from exc
        if claimable:
            self._work.set()

    async def load(self, thread_id: str) -> Thread:
        """See `ThreadStore.load`."""
        return await self._run(partial(_sqlite_reads.load, thread_id))

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
        query = partial(_sqlite_reads.summaries, status, agent, updated_after, wake_before, before, newest_first, limit)
        return await self._run(query)

    async def counts(self) -> StoreCounts:
        """See `ThreadStore.counts`."""
        return await self._run(_sqlite_reads.counts)

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """See `ThreadStore.find_key`."""
        row = await self._run(partial(_sqlite_reads.find_key, idempotency_key, scope))
        if row is None:
            return None
        if request is not None and row[1] is not None and row[1] != request:
            raise IdempotencyKeyReused(idempotency_key, thread_id=row[0])
        return str(row[0])

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """See `ThreadStore.claim`. `BEGIN IMMEDIATE` makes the pick and the lease one step across processes."""
        return await self._write(partial(_sqlite_leases.claim, owner, lease_seconds, limit, agents))

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """See `ThreadStore.claim_threads`."""
        return await claim_then_load(self, owner, lease_seconds=lease_seconds, limit=limit, agents=agents)

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """See `ThreadStore.set_aside`."""
        await self._write(partial(_sqlite_leases.set_aside, thread_id, reason))

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """See `ThreadStore.renew`."""
        return await self._write(partial(_sqlite_leases.renew, thread_id, owner, lease_seconds))

    async def release(self, thread_id: str, owner: str) -> None:
        """See `ThreadStore.release`."""
        if await self._write(partial(_sqlite_leases.release, thread_id, owner)):
            self._work.set()

    async def wait_for_work(self, seconds: float) -> None:
        """See `ThreadStore.wait_for_work`."""
        await self._work.wait(seconds)

    async def aclose(self) -> None:
        """Close the connections."""
        with self._now_lock:
            self._now.close()
        await self._run(lambda db: db.close())
        self._thread.stop()


def _alone() -> bool:
    """Whether the running task is its event loop's only one: then nothing waits while it waits for the disk."""
    return len(asyncio.all_tasks()) <= 1
