"""The rules every store's append follows: the summary row it derives, the version it checks, where its key belongs."""

from __future__ import annotations

from datetime import datetime

from ..events import RUN_ERROR
from ..exceptions import NotStorable, ThreadNotFound, UserError, VersionConflict
from ..thread import Thread
from .base import ThreadSummary

__all__ = ["check_version", "key_scope", "not_storable", "retry_time", "summarise"]


def key_scope(thread: Thread, after: int) -> str:
    """Where an append's idempotency key belongs: a launch's (`after` = 0) to its agent, any other to its thread."""
    if after == 0:
        agent = thread.metadata.get("agent")
        return f"launch:{agent if isinstance(agent, str) else ''}"
    return f"thread:{thread.id}"


def not_storable(thread: Thread, exc: Exception) -> NotStorable:
    """The error for an append whose values the store's encoding refused (`json.dumps`, the driver)."""
    return NotStorable(f"thread {thread.id!r} holds a value the store cannot encode: {exc}", thread_id=thread.id)


def summarise(thread: Thread, updated_at: datetime) -> ThreadSummary:
    """The summary row of a thread, computed from its events by the same code as `Thread.status`."""
    agent = thread.metadata.get("agent")
    parent = thread.metadata.get("forked_from")
    return ThreadSummary(
        thread_id=thread.id,
        status=thread.status,
        agent=agent if isinstance(agent, str) else None,
        parent_id=parent if isinstance(parent, str) else None,
        events=len(thread),
        updated_at=updated_at,
        wake_at=thread.state.wake_at,
        retry_at=retry_time(thread),
    )


def check_version(thread: Thread, after: int, stored: int | None) -> None:
    """Raise unless appending `thread.events[after:]` to a stored thread of `stored` events is valid.

    Args:
        thread: The writer's thread.
        after: The event count the writer extends (0 creates the thread).
        stored: The stored event count, or None when the thread is not stored.

    Raises:
        UserError: `after` is not within the writer's own thread.
        ThreadNotFound: `after` > 0 for a thread that is not stored.
        VersionConflict: The stored count is not `after` (or the thread exists, for `after` = 0).
    """
    if not 0 <= after <= len(thread):
        raise UserError(f"append after={after} is outside thread {thread.id!r} of {len(thread)} events")
    if stored is None and after > 0:
        raise ThreadNotFound(thread.id)
    if stored is not None and (after == 0 or stored != after):
        raise VersionConflict(thread.id, expected=after, actual=stored)


def retry_time(thread: Thread) -> datetime | None:
    """The `retry_at` of the thread's last event if that is a `run_error`: no worker runs it before then."""
    if not thread.events:
        return None
    last = thread.events[-1]
    if last.type != RUN_ERROR or not isinstance(last.data, dict):
        return None
    value = last.data.get("retry_at")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None
