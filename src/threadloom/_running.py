"""Runs that go wrong, and runs until nothing is left: what `Runtime.run_guarded` and `run_until_idle` do.

A run that ends in an exception nobody expected, or that could not go on, is recorded in the thread
(a `run_error` with the time it may be tried again, see `RunLimits`) instead of raised, so one bad
thread never stops a worker. Sleeping threads are woken by an event, once however many look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from ._changes import RETRIES, wake
from ._limits import RunLimits, contention_pause, failed_attempts, run_error
from ._saving import patiently, run_saving
from .agent import Agent
from .events import ERROR, RUN_ERROR, Event, storable_text
from .exceptions import (
    LeaseLost,
    NotStorable,
    StoreError,
    ThreadDecodeError,
    ThreadloomError,
    UserError,
    VersionConflict,
)
from .state import FAILED
from .store import ThreadStore
from .thread import Thread

__all__ = ["find_agent", "record_failure", "run_guarded", "run_until_idle", "to_run", "wake_due"]

log = logging.getLogger("threadloom.runtime")


def find_agent(agents: Mapping[str, Agent], name: str) -> Agent:
    """The agent named `name`.

    Raises:
        UserError: `agents` has none of that name.
    """
    try:
        return agents[name]
    except KeyError:
        known = ", ".join(sorted(agents)) or "none"
        raise UserError(f"no agent named {name!r} in this runtime (it has: {known})") from None


async def to_run(
    store: ThreadStore, agents: Mapping[str, Agent], thread_id: str, loaded: Thread | None
) -> tuple[Agent, Thread]:
    """The thread (`loaded`, else read now, patiently) and the agent of `agents` that runs it.

    Raises:
        UserError: `agents` has no agent of the thread's name.
    """
    thread = loaded if loaded is not None else await patiently(lambda: store.load(thread_id))
    return find_agent(agents, str(thread.metadata.get("agent"))), thread


async def run_guarded(
    agent: Agent,
    store: ThreadStore,
    thread: Thread,
    *,
    stop: asyncio.Event | None,
    owner: str | None,
    limits: RunLimits,
) -> Thread:
    """Run `agent` on `thread` with every event saved; a run that fails is recorded, not raised.

    Raises:
        LeaseLost: `owner` no longer holds the lease.
        StoreError: The store kept failing (its trouble, not the thread's).
    """
    try:
        ran = await run_saving(agent, store, thread, stop=stop, owner=owner, limits=limits)
    except LeaseLost:
        raise
    except NotStorable as exc:
        return await record_failure(store, thread.id, type(exc).__name__, str(exc), owner, limits)
    except StoreError:
        raise
    except Exception as exc:  # a bug here or in user code: recorded, retried later, then given up
        return await record_failure(store, thread.id, type(exc).__name__, str(exc), owner, limits)
    last = ran.events[-1] if ran.events else None
    if ran.status == "ready" and not (stop is not None and stop.is_set()) and last is not None:
        if last.type != RUN_ERROR:
            data = last.data if last.type == ERROR and isinstance(last.data, dict) else {}
            error_type = str(data.get("error_type") or "RunStopped")
            message = str(data.get("message") or "the run stopped with the thread still ready")
            return await record_failure(store, thread.id, error_type, message, owner, limits)
    return ran


async def record_failure(
    store: ThreadStore, thread_id: str, error_type: str, message: str, owner: str | None, limits: RunLimits
) -> Thread:
    """Append the `run_error` of a failed run (and `failed`, at the last attempt) to the stored thread."""
    now = datetime.now(UTC)
    for attempt in range(RETRIES):
        stored = await patiently(lambda: store.load(thread_id))
        if stored.status != "ready":
            return stored  # moved on meanwhile (cancelled, say): nothing to retry
        tries = failed_attempts(stored) + 1
        if tries >= limits.attempts:
            reason = storable_text(f"{tries} runs failed in a row; the last: {error_type}: {message}")[:600]
            changed = stored.append(run_error(error_type, message, tries, None))
            changed = changed.append(Event(FAILED, {"reason": reason}))
            log.error("thread %s failed for good: %s", thread_id, reason)
        else:
            retry_at = now + timedelta(seconds=limits.backoff(tries))
            changed = stored.append(run_error(error_type, message, tries, retry_at))
            log.warning(
                "thread %s: run %d failed (%s: %s); retried after %s",
                thread_id,
                tries,
                error_type,
                message[:200],
                retry_at.isoformat(),
            )
        try:
            await patiently(partial(store.append, changed, after=len(stored), owner=owner))
        except VersionConflict:
            now_stored = await patiently(lambda: store.load(thread_id))
            mine = changed.events[len(stored) :]
            if [e.id for e in now_stored.events[len(stored) : len(changed)]] == [e.id for e in mine]:
                return now_stored  # a write that failed had committed after all: count the run once
            await contention_pause(attempt)
            continue
        return changed
    raise ThreadloomError(f"thread {thread_id!r} kept changing under {RETRIES} attempts to write to it")


async def run_until_idle(
    store: ThreadStore,
    run: Callable[[str], Awaitable[Thread]],
    wake: Callable[[], Awaitable[object]],
    stop: asyncio.Event | None,
) -> int:
    """Wake the due sleepers and `run` every `ready` thread until none is left (or `stop` is set).

    Args:
        store: Where the threads are.
        run: Runs one thread by id until it stops or `stop` is set (`Runtime.run_guarded`).
        wake: Wakes the due sleepers (`Runtime.wake_due`).
        stop: When set, no further run starts.

    Returns:
        How many thread runs it made.
    """
    tried: set[str] = set()
    runs = 0
    while stop is None or not stop.is_set():
        await wake()
        now = datetime.now(UTC)
        ready = [
            s
            for s in await store.list(status="ready", limit=1000)
            if s.thread_id not in tried and s.unreadable is None and (s.retry_at is None or s.retry_at <= now)
        ]
        if not ready:
            return runs
        for summary in ready:
            if stop is not None and stop.is_set():
                break
            try:
                thread = await run(summary.thread_id)
            except ThreadDecodeError as exc:
                log.error("thread %s cannot be read; set aside: %s", summary.thread_id, exc)
                await store.set_aside(summary.thread_id, str(exc))
                tried.add(summary.thread_id)
                continue
            except UserError as exc:  # its agent is not one of ours
                log.error("cannot run thread %s: %s", summary.thread_id, exc)
                tried.add(summary.thread_id)
                continue
            runs += 1
            if thread.status == "ready":
                tried.add(summary.thread_id)
    return runs


async def wake_due(store: ThreadStore, now: datetime) -> list[str]:
    """Append a `wake_up` event to every sleeping thread whose `wake_at` has come (see `Runtime.wake_due`)."""
    woken: list[str] = []
    for summary in await store.list(status="sleeping", wake_before=now, limit=1000):
        key = f"wake:{summary.thread_id}:{summary.events}"
        try:
            # Checked again on the thread as stored: since the listing it may have moved on.
            if await wake(store, summary.thread_id, now, key) is None:
                continue
        except ThreadDecodeError as exc:  # left to the runs that set it aside
            log.error("cannot wake thread %s: %s", summary.thread_id, exc)
            continue
        woken.append(summary.thread_id)
    return woken
