"""What the stores share for leases: a claim that loads what it leased, and the signal that wakes this process's workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

from ..exceptions import ThreadDecodeError
from ..thread import Thread
from .base import ThreadStore

__all__ = ["WorkSignal", "claim_then_load", "release_all"]


async def claim_then_load(
    store: ThreadStore, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
) -> list[Thread]:
    """`ThreadStore.claim_threads` as `claim`, then `load` of each thread: for stores where a load costs no round trip.

    Raises:
        ThreadDecodeError: A claimed thread cannot be read; the other claimed threads are released first.
    """
    claimed = await store.claim(owner, lease_seconds=lease_seconds, limit=limit, agents=agents)
    threads: list[Thread] = []
    for thread_id in claimed:
        try:
            threads.append(await store.load(thread_id))
        except ThreadDecodeError:
            await release_all(store, [t for t in claimed if t != thread_id], owner)
            raise
    return threads


async def release_all(store: ThreadStore, thread_ids: Collection[str], owner: str) -> None:
    """Release `owner`'s leases on these threads (a claim that cannot hand them over: see `claim_threads`)."""
    for thread_id in thread_ids:
        await store.release(thread_id, owner)


class WorkSignal:
    """Wakes workers of this process when a thread may have become claimable (the stores' in-process half)."""

    def __init__(self) -> None:
        """Nothing signalled yet."""
        self._event = asyncio.Event()

    def set(self) -> None:
        """Say that work may be waiting."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return once signalled (and reset the signal), or after `seconds`."""
        if seconds > 0 and not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), seconds)
        # Reset before the caller looks for work: whatever a later signal announces, it will see.
        self._event.clear()
