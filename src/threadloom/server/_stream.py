"""`GET /v1/threads/{thread_id}/stream`: a thread's events as server-sent events, read from the log.

The stream polls the store through the runtime, so an event any process appends (a worker on
another machine, a webhook) reaches every stream; nothing is kept in memory between two reads. The
SSE `id` of each event is its event id: a client that reconnects with `Last-Event-ID` gets the events
after that one, none missed and none twice. The stream ends with an `end` event once the thread is
`done` or `failed` and everything is sent; while the thread waits it sends a comment now and then,
so that proxies keep the connection open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ..runtime import Runtime
from ..thread import Thread
from ._auth import Caller, config_of, holds, require
from ._bodies import EventOut, error_responses, event_out
from ._errors import ApiError
from ._params import ThreadId
from ._redaction import Redaction

__all__ = ["ENDED", "resume_at", "router", "stream_events"]

router = APIRouter(tags=["threads"])

ENDED = frozenset({"done", "failed"})
"""A stream ends once its thread has one of these statuses and every event is sent."""


def resume_at(thread: Thread, last_event_id: str | None) -> int:
    """Where a stream of `thread` starts: after event `last_event_id`, or at its first event.

    Raises:
        ApiError: 422: no event of the thread has that id.
    """
    if last_event_id is None:
        return 0
    for position, event in enumerate(thread.events):
        if event.id == last_event_id:
            return position + 1
    raise ApiError(422, "unknown_event_id", f"thread {thread.id!r} has no event {last_event_id!r} to resume after")


async def stream_events(
    runtime: Runtime,
    thread: Thread,
    start: int = 0,
    *,
    poll_seconds: float = 0.25,
    heartbeat_seconds: float = 15.0,
    allowed: Callable[[], Awaitable[bool]] | None = None,
    refusal: ServerSentEvent | None = None,
    recheck_seconds: float = 5.0,
    raw: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    """The events of `thread` from position `start` on, then each new one as the log gets it.

    Args:
        runtime: Where the thread is read again every `poll_seconds`.
        thread: The thread as just loaded (its events from `start` on are sent first).
        start: How many of its events the client has (`resume_at`).
        poll_seconds: How often the log is read while nothing new comes.
        heartbeat_seconds: How long the stream may stay silent: a comment is sent after that.
        allowed: Whether the client may still read (its key not revoked, its session not over),
            asked every `recheck_seconds`; once it may not, `refusal` is sent and the stream ends.
        refusal: The last event of a stream whose client may no longer read.
        recheck_seconds: How often `allowed` is asked.
        raw: Send each event's data as logged, for a caller that redacts it itself (the inbox);
            otherwise its secrets are `[REDACTED]`, as a thread read shows them.

    Yields:
        One server-sent event per thread event (`id`: the event id, `data`: the event as `EventOut`),
        comments while the thread waits, and a last `end` event (its `data` the final status) once
        the thread is `done` or `failed`.
    """
    position = start
    quiet_since = checked = time.monotonic()
    # Each batch is redacted with the secrets of the whole thread as it stands, so a secret any of its
    # events holds is hidden in these too; only the new events are scanned for new secrets.
    redaction = None if raw else Redaction.of(runtime, thread)
    seen = len(thread)
    while True:
        new = thread.events[position:]
        if redaction is not None and len(thread) > seen:
            redaction, seen = redaction.seeing(thread.events[seen:]), len(thread)
        for event in new:
            if redaction is None:
                sent = EventOut(id=event.id, type=event.type, data=event.data, at=event.at)
            else:
                sent = event_out(event, redaction)
            yield ServerSentEvent(id=event.id, data=sent)
        if len(thread) > position:
            position, quiet_since = len(thread), time.monotonic()
        if thread.status in ENDED:
            yield ServerSentEvent(event="end", data={"status": thread.status})
            return
        if time.monotonic() - quiet_since >= heartbeat_seconds:
            yield ServerSentEvent(comment=thread.status)
            quiet_since = time.monotonic()
        await asyncio.sleep(poll_seconds)
        if allowed is not None and time.monotonic() - checked >= recheck_seconds:
            if not await allowed():
                yield refusal or ServerSentEvent(event="unauthorized", data={"reason": "the key may no longer read"})
                return
            checked = time.monotonic()
        thread = await runtime.get(thread.id)


async def _streamed(
    thread_id: ThreadId,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=200)] = None,
) -> tuple[Thread, int]:
    """The thread and where its stream starts, checked before the stream begins (404 and 422 as JSON)."""
    thread = await config_of(request).runtime.get(thread_id)
    return thread, resume_at(thread, last_event_id)


@router.get(
    "/{thread_id}/stream",
    response_class=EventSourceResponse,
    operation_id="stream_thread",
    summary="The thread's events as server-sent events, resumable with Last-Event-ID",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def stream(
    request: Request,
    _: Annotated[Caller, Depends(require("read"))],  # before the thread is read: 401 / 403 come first
    streamed: Annotated[tuple[Thread, int], Depends(_streamed)],
) -> AsyncIterator[ServerSentEvent]:
    """Every event of the thread (after `Last-Event-ID`), then new ones as they are appended, until it ends.

    Secrets in event data show as `[REDACTED]`, as a thread read shows them.
    """
    thread, start = streamed
    async for sent in stream_events(config_of(request).runtime, thread, start, allowed=lambda: holds(request, "read")):
        yield sent
