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
import logging
import time
import weakref
from collections.abc import Collection
from datetime import datetime
from typing import Any

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("PostgresStore needs the `postgres` extra: pip install 'threadloom[postgres]'") from exc

from ..exceptions import IdempotencyKeyReused, StoreError, ThreadDecodeError
from ..state import Status
from ..thread import Thread
from . import _postgres_leases, _postgres_reads, _postgres_writes
from ._appends import not_storable
from ._codec import decode_thread
from ._leases import WorkSignal, release_all
from ._postgres_schema import CHANNEL, MIGRATIONS, Pool, check, migrate
from .base import StoreCounts, ThreadSummary, masked, masked_url, unencoded_password

__all__ = ["CHANNEL", "MIGRATIONS", "PostgresStore"]

log = logging.getLogger("threadloom.store")


class PostgresStore:
    """Threads in PostgreSQL, shared by any number of processes. Build one with `await PostgresStore.open(url)`."""

    def __init__(self, pool: Pool, url: str) -> None:
        """Wrap an open pool; use `PostgresStore.open(url)` instead."""
        self._pool = pool
        self.url = url
        self._work = WorkSignal()
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, url: str, *, max_connections: int = 10, connect_timeout: float = 5, upgrade: bool = True
    ) -> PostgresStore:
        """Connect, apply pending migrations and return the store.

        Args:
            url: A libpq URL. A schema other than `public`: `?options=-csearch_path%3Dmyschema`.
            max_connections: The pool's size.
            connect_timeout: Seconds to wait for the server before giving up.
            upgrade: False opens the store as it is: a database without the store's tables (an
                empty one too) or with a store of another schema is refused, and nothing is
                created or migrated. For commands that only read or decide.

        Raises:
            StoreError: The database cannot be reached (the server's reason in one line, the URL's
                password masked), or was written by a newer threadloom; without `upgrade`, it holds
                no store of this threadloom's schema.
        """
        # One connection first: a server that cannot be reached fails here at once with its reason
        # (the pool would retry until its timeout and then say only "pool initialization incomplete").
        try:
            first = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
        except psycopg.Error as exc:
            reason = masked(" ".join(str(exc).split()), url)
            if unencoded_password(url):
                reason += " (the URL's password holds / ? # or @: percent-encode them, / as %2F, @ as %40)"
            raise StoreError(f"cannot open PostgreSQL store {masked_url(url)}: {reason}") from None
        try:
            if not upgrade:
                await check(first, MIGRATIONS, masked_url(url))
            else:
                async with first.transaction():
                    await migrate(first, MIGRATIONS)  # MIGRATIONS as this module has it (tests replace it)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store {masked_url(url)}: {masked(str(exc), url)}") from None
        finally:
            await first.close()
        # Autocommit: a statement on its own is its own transaction (one round trip, no BEGIN and
        # COMMIT of its own); work of several statements opens `conn.transaction()`.
        pool: Pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True},
            check=_check_if_idle,
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
            await _postgres_writes.append(self._pool, thread, after, idempotency_key, request, owner)
        except UnicodeEncodeError as exc:  # a value psycopg cannot send
            raise not_storable(thread, exc) from exc

    async def load(self, thread_id: str) -> Thread:
        """See `ThreadStore.load`."""
        return await _postgres_reads.load(self._pool, thread_id)

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
        return await _postgres_reads.summaries(
            self._pool, status, agent, updated_after, wake_before, before, newest_first, limit
        )

    async def counts(self) -> StoreCounts:
        """See `ThreadStore.counts`."""
        return await _postgres_reads.counts(self._pool)

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """See `ThreadStore.find_key`."""
        row = await _postgres_reads.find_key(self._pool, idempotency_key, scope)
        if row is None:
            return None
        if request is not None and row[1] is not None and row[1] != request:
            raise IdempotencyKeyReused(idempotency_key, thread_id=str(row[0]))
        return str(row[0])

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """See `ThreadStore.claim`. `FOR UPDATE SKIP LOCKED` lets many workers claim without waiting on each other."""
        return await _postgres_leases.claim(self._pool, owner, lease_seconds, limit, agents)

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """See `ThreadStore.claim_threads`: the claim and the claimed threads' events in one statement.

        Events are read in the statement's snapshot; a thread appended to after that (a race of a few
        microseconds) has fewer event rows than its row counts, and is loaded again. So is a thread
        longer than `CLAIM_EVENTS`, which `load` reads faster than one big result would.
        """
        claimed = await _postgres_leases.claim_rows(self._pool, owner, lease_seconds, limit, agents)
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
        await _postgres_leases.set_aside(self._pool, thread_id, reason)

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """See `ThreadStore.renew`."""
        return await _postgres_leases.renew(self._pool, thread_id, owner, lease_seconds)

    async def release(self, thread_id: str, owner: str) -> None:
        """See `ThreadStore.release`."""
        await _postgres_leases.release(self._pool, thread_id, owner)

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


_IDLE_CHECK_SECONDS = 1.0  # a connection not handed out for this long is checked before it is handed out again
_handed_out: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's `check`: a connection not handed out for a while (the server may have dropped it) answers an empty query first.

    A connection that fails it is thrown away and another one handed out, so a connection dropped
    between two calls (a restart, an idle timeout) costs the caller nothing; a busy worker's
    connections, handed out again and again, cost no extra round trip. Timed from when it was last
    handed out, not returned: at worst a connection is checked once more than it needs (a pool
    `reset` to note returns would send every return through the pool's background task).
    """
    now = time.monotonic()
    last, _handed_out[conn] = _handed_out.get(conn, 0.0), now
    if now - last > _IDLE_CHECK_SECONDS:
        await conn.execute("")
