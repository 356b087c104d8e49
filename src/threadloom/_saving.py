"""A durable run: the loop with every event written to the store as it happens (used by `Runtime.run_thread`).

The rules that keep a thread whole when writers race or the store falters:

- Someone else appended meanwhile (a person, a webhook): reload and lay the run's new events on top,
  unless the thread was cancelled, in which case the run stops and writes nothing more.
- The store failed (a restart, a dropped connection): retry with backoff. The failed write may have
  committed all the same; the retry then conflicts with the run's own events, which is recognised by
  their ids and counted as written, so no event is ever stored twice.
- The lease is lost (`LeaseLost`) or the worker is stopping: the run ends at once (stopping waits
  for a started tool's result to be saved).

Each save writes every event the loop recorded since the last one in one append: usually one event,
and a `tool_call` that runs at once together with its `tool_started`.

Which saves wait for the disk (`ThreadStore.append(sync=)`): all but a tool's result (its
`tool_response` or tool `error`) that the run goes on from. The save before a tool runs (its
`tool_started`) and every save that ends a run (the thread stops being `ready`, or the run is asked to
stop) wait for it, and a synced commit carries every commit before it to the disk (SQLite's WAL is one
file written in order). So a power cut can lose only results the run had not yet followed with a
synced save: the tool's next call, or the end of the run, comes at the latest one model call later. A
result lost that way reads as any interrupted call does (`tool_started`, no result): an idempotent
tool runs again with the same key, any other asks a person. Never is a call that ran lost, so no
effect is silently repeated. (A run that ends just after such a result without another save, by an
unexpected exception or a stop requested while saving it, leaves it to the store's next synced
commit: a worker releases its lease at once.)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from ._limits import RecentActivity, RunLimits, contention_pause, failed_attempts, run_error
from .exceptions import (
    AlreadyDelivered,
    IdempotencyKeyReused,
    LeaseLost,
    NotStorable,
    StoreError,
    ThreadDecodeError,
    ThreadloomError,
    ThreadNotFound,
    VersionConflict,
)
from .state import ERROR, FAILED, TOOL_RESPONSE, TOOL_STARTED
from .thread import Thread

if TYPE_CHECKING:
    from .agent import Agent
    from .events import Event
    from .store import ThreadStore

__all__ = ["patiently", "run_saving"]

_T = TypeVar("_T")
_RACES = 20  # appends lost to other writers before giving up
_ATTEMPTS = 12  # tries of one store call that fails: about 13 s of backoff in all


class _Stopped(BaseException):
    """Raised from a run's `save` to end the run between two steps.

    A BaseException, like `CancelledError`, so that no `except Exception` on the way out swallows it.
    """

    def __init__(self, thread: Thread) -> None:
        super().__init__(thread.id)
        self.thread = thread


async def patiently(work: Callable[[], Awaitable[_T]]) -> _T:
    """`await work()`, retrying a store that fails (not one that answers no) with growing pauses.

    Raises:
        StoreError: The store still failed after about 13 seconds.
    """
    for attempt in range(_ATTEMPTS):
        try:
            return await work()
        except (
            VersionConflict,
            AlreadyDelivered,
            IdempotencyKeyReused,
            LeaseLost,
            ThreadNotFound,
            NotStorable,
            ThreadDecodeError,
        ):
            raise  # answers (or the thread's own fault), not failures: the same call would fail the same way
        except StoreError:
            if attempt == _ATTEMPTS - 1:
                raise
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def run_saving(
    agent: Agent,
    store: ThreadStore,
    thread: Thread,
    *,
    stop: asyncio.Event | None,
    owner: str | None,
    limits: RunLimits | None = None,
) -> Thread:
    """Run `agent` on `thread` until it must stop, appending each new event to `store` as it happens.

    Args:
        agent: The thread's agent.
        store: Where the thread lives.
        thread: The thread as loaded.
        stop: When set, end the run after the events being saved, unless they hold a
            `tool_started` (that tool runs, and its result is saved, first).
        owner: The lease holder the appends are made for (see `ThreadStore.append`).
        limits: The circuit breaker: once the thread's last minute holds as many model calls or
            tool runs as `limits` allow, the run records a `run_error` (retried when the minute
            has passed) and ends between two steps.

    Returns:
        The thread as the run left it.

    Raises:
        LeaseLost: `owner` no longer holds the lease.
    """
    saved = len(thread)
    recent = RecentActivity(thread, limits or RunLimits())

    async def pause_if_over(current: Thread) -> None:
        """End the run (recording why and until when) if the thread is over its per-minute bounds."""
        nonlocal saved
        over = recent.over(current)
        if over is None:
            return
        reason, until = over
        paused = current.append(run_error("CircuitOpen", reason, failed_attempts(current) + 1, until))
        try:
            await patiently(partial(store.append, paused, after=saved, owner=owner))
        except VersionConflict:
            raise _Stopped(current) from None  # someone else wrote: the next run looks again
        raise _Stopped(paused)

    async def save(current: Thread) -> Thread:
        nonlocal saved
        # A save with a `tool_started` (alone, or with its `tool_call`) is followed by the tool's run.
        starts = any(e.type == TOOL_STARTED for e in current.events[saved:])
        result = not starts and any(_is_result(e) for e in current.events[saved:])
        for race in range(_RACES):
            # Only a result the run goes on from may skip the disk's sync (see the module's docstring).
            sync = not result or current.status != "ready" or (stop is not None and stop.is_set())
            try:
                await patiently(partial(store.append, current, after=saved, owner=owner, sync=sync))
            except VersionConflict:
                stored = await patiently(partial(store.load, thread.id))
                mine = current.events[saved:]
                if [e.id for e in stored.events[saved : saved + len(mine)]] == [e.id for e in mine]:
                    current, saved = stored, len(stored)  # a failed write had committed after all
                elif stored.status == FAILED:
                    if result:  # cancelled while the tool ran: its outcome is kept, after `failed`
                        stored = await _kept(store, stored, mine)
                    raise _Stopped(stored) from None  # cancelled: its next tool must not run
                else:
                    current, saved = stored.extend(mine), len(stored)
                    await contention_pause(race)
                    continue
            saved = len(current)
            if stop is not None and stop.is_set() and not starts:
                raise _Stopped(current)
            if not starts and current.status == "ready":
                await pause_if_over(current)
            return current
        raise ThreadloomError(f"thread {thread.id!r} kept changing under {_RACES} attempts to save it")

    try:
        if thread.status == "ready":
            await pause_if_over(thread)
        return await agent.run(thread, save=save)
    except _Stopped as stopped:
        return stopped.thread


async def _kept(store: ThreadStore, stored: Thread, events: Sequence[Event]) -> Thread:
    """`stored` with `events` appended, or as it is if another writer got there first (a failed thread's state stays)."""
    kept = stored.extend(events)
    try:
        await patiently(partial(store.append, kept, after=len(stored)))
    except VersionConflict:
        return stored
    return kept


def _is_result(event: Event) -> bool:
    """A tool's outcome: its `tool_response`, or the `error` it ended with."""
    return event.type == TOOL_RESPONSE or (
        event.type == ERROR and isinstance(event.data, dict) and event.data.get("source") == "tool"
    )
