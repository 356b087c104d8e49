"""`MemoryStore` (`memory://`): the contract in a dict, for tests and the demo. Nothing survives the process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from ..exceptions import AlreadyDelivered, IdempotencyKeyReused, LeaseLost, ThreadNotFound
from ..state import Status
from ..thread import Thread
from ._appends import check_version, key_scope, summarise
from ._leases import WorkSignal, claim_then_load
from .base import StoreCounts, ThreadSummary, count_threads

__all__ = ["MemoryStore"]


class MemoryStore:
    """Threads in memory, with the same append rules as the durable stores."""

    def __init__(self) -> None:
        """An empty store."""
        self._threads: dict[str, Thread] = {}
        self._summaries: dict[str, ThreadSummary] = {}
        self._keys: dict[tuple[str, str], tuple[str, str | None]] = {}  # (scope, key) -> (thread, request)
        self._leases: dict[str, tuple[str, datetime]] = {}
        self._lock = asyncio.Lock()
        self._work = WorkSignal()

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
        """See `ThreadStore.append`. Nothing is on disk: `sync` changes nothing."""
        scoped = None if idempotency_key is None else (key_scope(thread, after), idempotency_key)
        async with self._lock:
            if scoped is not None and (found := self._keys.get(scoped)) is not None:
                if request is not None and found[1] is not None and found[1] != request:
                    raise IdempotencyKeyReused(scoped[1], thread_id=found[0])
                raise AlreadyDelivered(scoped[1], thread_id=found[0])
            stored = self._threads.get(thread.id)
            check_version(thread, after, None if stored is None else len(stored))
            if owner is not None and stored is not None and self._leases.get(thread.id, ("", None))[0] != owner:
                raise LeaseLost(thread.id, owner=owner)
            # Keep the writer's events from `after` on, behind the stored prefix (which they extend).
            base = stored if stored is not None else Thread(thread_id=thread.id, metadata=thread.metadata)
            new = base.extend(thread.events[after:])
            self._threads[thread.id] = new
            self._summaries[thread.id] = summarise(new, datetime.now(UTC))
            if scoped is not None:
                self._keys[scoped] = (thread.id, request)
            if new.status == "ready" and not self._leased(thread.id):
                self._work.set()

    async def load(self, thread_id: str) -> Thread:
        """See `ThreadStore.load`."""
        try:
            return self._threads[thread_id]
        except KeyError:
            raise ThreadNotFound(thread_id) from None

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
        rows = [
            s
            for s in self._summaries.values()
            if (status is None or s.status == status)
            and (agent is None or s.agent == agent)
            and (updated_after is None or s.updated_at > updated_after)
            and (wake_before is None or (s.wake_at is not None and s.wake_at <= wake_before))
            and (before is None or (s.updated_at, s.thread_id) < before)
        ]
        return sorted(rows, key=lambda s: (s.updated_at, s.thread_id), reverse=newest_first)[:limit]

    async def counts(self) -> StoreCounts:
        """See `ThreadStore.counts`."""
        return count_threads(self._threads.values())

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """See `ThreadStore.find_key`."""
        for (where, key), (thread_id, stored) in self._keys.items():
            if key == idempotency_key and (scope is None or where == scope):
                if request is not None and stored is not None and stored != request:
                    raise IdempotencyKeyReused(key, thread_id=thread_id)
                return thread_id
        return None

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """See `ThreadStore.claim`."""
        now = datetime.now(UTC)
        claimed: list[str] = []
        for summary in await self.list(status="ready", limit=len(self._summaries) or 1):
            if len(claimed) == limit:
                break
            runnable = summary.unreadable is None and (summary.retry_at is None or summary.retry_at <= now)
            if runnable and (agents is None or summary.agent in agents) and not self._leased(summary.thread_id, now):
                self._leases[summary.thread_id] = (owner, now + timedelta(seconds=lease_seconds))
                claimed.append(summary.thread_id)
        return claimed

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """See `ThreadStore.claim_threads`."""
        return await claim_then_load(self, owner, lease_seconds=lease_seconds, limit=limit, agents=agents)

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """See `ThreadStore.set_aside`."""
        if thread_id in self._summaries:
            self._summaries[thread_id] = dataclasses.replace(self._summaries[thread_id], unreadable=reason)
        self._leases.pop(thread_id, None)

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """See `ThreadStore.renew`."""
        lease = self._leases.get(thread_id)
        now = datetime.now(UTC)
        if lease is None or lease[0] != owner or lease[1] <= now:
            return False
        self._leases[thread_id] = (owner, now + timedelta(seconds=lease_seconds))
        return True

    async def release(self, thread_id: str, owner: str) -> None:
        """See `ThreadStore.release`."""
        if self._leases.get(thread_id, ("", None))[0] == owner:
            del self._leases[thread_id]
            if thread_id in self._summaries and self._summaries[thread_id].status == "ready":
                self._work.set()

    async def wait_for_work(self, seconds: float) -> None:
        """See `ThreadStore.wait_for_work`."""
        await self._work.wait(seconds)

    def _leased(self, thread_id: str, now: datetime | None = None) -> bool:
        lease = self._leases.get(thread_id)
        return lease is not None and lease[1] > (now or datetime.now(UTC))

    async def aclose(self) -> None:
        """Nothing to release."""
