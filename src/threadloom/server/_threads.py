"""`/v1/threads`: launch, read, list, send events to, fork and cancel threads (decisions: `_decisions`).

Each route validates its input, makes one `Runtime` call and shapes the answer: what a thread may
do is the runtime's to say, so the API, the CLI and the inbox cannot disagree. An `Idempotency-Key`
makes a retried request a replay: the same answer, nothing written twice, `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from ..events import RUNTIME_EVENTS, Event, id_problem
from ..exceptions import InvalidTransition, ThreadBusy, VersionConflict
from ..state import Status
from . import _context, _decisions, _stream
from ._auth import Caller, config_of, require
from ._bodies import (
    CancelBody,
    EventBody,
    ForkBody,
    LaunchBody,
    Launched,
    ThreadOut,
    ThreadPage,
    ThreadStatus,
    error_responses,
    summary_out,
    thread_out,
)
from ._decisions import not_waiting
from ._errors import ApiError
from ._links import answer_url
from ._params import NO_NUL, IdempotencyKey, ThreadId, replayed
from ._redaction import Redaction

__all__ = ["outside_event", "router"]

router = APIRouter(prefix="/v1/threads", tags=["threads"])

_CURSOR_VERSION = 1


def outside_event(body: EventBody) -> Event:
    """The event a request brings, refused (422) if its type is one only the runtime writes.

    Raises:
        ApiError: The type is threadloom's own.
        UserError: The data is not a JSON value a store can hold (422 too).
    """
    # From outside, a `tool_call` or an `approval` would skip the approval that `write` keys may not give.
    if body.type in RUNTIME_EVENTS:
        raise ApiError(
            422,
            "reserved_event_type",
            f"events of type {body.type!r} are written by threadloom itself; approve, respond or cancel instead",
        )
    return Event(body.type, body.data)


_LAUNCH_LINKS = {
    name: {"operationId": operation, "parameters": {"thread_id": "$response.body#/thread_id"}}
    for name, operation in (
        ("GetThread", "get_thread"),
        ("SendEvent", "send_event"),
        ("ForkThread", "fork_thread"),
        ("CancelThread", "cancel_thread"),
        ("GetContext", "get_context"),
    )
}


@router.post(
    "",
    status_code=201,
    operation_id="launch_thread",
    summary="Launch a thread",
    responses={
        201: {"description": "Launched", "links": _LAUNCH_LINKS},
        200: {
            "model": Launched,
            "description": "A replay: this Idempotency-Key launched it before",
            "links": _LAUNCH_LINKS,
        },
        **error_responses(400, 401, 403, 409, 413, 422, 503),
    },
)
async def launch(
    body: LaunchBody,
    request: Request,
    response: Response,
    _: Annotated[Caller, Depends(require("write"))],
    key: IdempotencyKey = None,
) -> Launched:
    """Start a thread of `agent` with its first event; a worker runs it."""
    runtime = config_of(request).runtime
    event = outside_event(body.event)
    try:
        thread_id = await runtime.launch(
            body.agent, event, thread_id=body.thread_id, idempotency_key=key, metadata=body.metadata
        )
    except VersionConflict:
        raise ApiError(409, "thread_exists", f"a thread with the id {body.thread_id!r} exists already") from None
    thread = await runtime.get(thread_id)
    again = thread.events[0].id != event.id  # the key's first launch made the thread, with its own event
    if again:
        replayed(response)
    return Launched(thread_id=thread.id, status=thread.status, replayed=again)


@router.get(
    "",
    operation_id="list_threads",
    summary="List threads, newest first",
    responses=error_responses(401, 403, 422, 503),
)
async def list_threads(
    request: Request,
    _: Annotated[Caller, Depends(require("read"))],
    status: Annotated[Status | None, Query(description="Only threads with this status.")] = None,
    agent: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Only threads of this agent.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=1_000, description="`next_cursor` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Threads per page.")] = 50,
) -> ThreadPage:
    """The threads most recently changed first, a page at a time.

    A thread that changes while you page moves to the front: a later page does not show it again.
    """
    before = _read_cursor(cursor) if cursor is not None else None
    found = await config_of(request).runtime.list(
        status=status, agent=agent, before=before, newest_first=True, limit=limit + 1
    )
    page = found[:limit]
    more = len(found) > limit
    return ThreadPage(
        threads=[summary_out(s) for s in page],
        next_cursor=_cursor(page[-1].updated_at, page[-1].thread_id) if more else None,
    )


def _cursor(updated_at: datetime, thread_id: str) -> str:
    """An opaque cursor: the last thread of a page, which the next page starts below."""
    text = json.dumps([_CURSOR_VERSION, updated_at.isoformat(), thread_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        version, moment, thread_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(moment)
        # A NUL or a lone surrogate would reach the store's query, which cannot hold it.
        if version != _CURSOR_VERSION or id_problem(thread_id, "thread id") is not None or at.utcoffset() is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(422, "invalid_cursor", "this cursor is not one a page of this API gave") from None
    return at, thread_id


@router.get(
    "/{thread_id}",
    operation_id="get_thread",
    summary="A thread: its events, status, pending request, usage and cost",
    responses={
        200: {
            "links": {
                "Approve": {
                    "operationId": "decide",
                    "parameters": {"thread_id": "$response.body#/thread_id", "call_id": "$response.body#/pending/id"},
                },
                "Respond": {
                    "operationId": "respond",
                    "parameters": {
                        "thread_id": "$response.body#/thread_id",
                        "request_id": "$response.body#/pending/id",
                    },
                },
            }
        },
        **error_responses(401, 403, 404, 422, 503),
    },
)
async def get_thread(
    thread_id: ThreadId, request: Request, caller: Annotated[Caller, Depends(require("read"))]
) -> ThreadOut:
    """The thread's log and what is derived from it; a pending request comes with its answer link.

    Secrets in event data, the pending request and the metadata show as `[REDACTED]`, to every key
    (as the thread's agent hides them from its model: secret-looking keys, its tools' secret parameters,
    and secret values wherever else they appear). The link is shown only to a key with the `approve`
    scope (null for others): it answers with no key.
    """
    config = config_of(request)
    thread = await config.runtime.get(thread_id)
    # The link answers with no key, so only a key that could answer anyway may see it.
    link = (
        answer_url(config.public_url, config.secret, thread, config.answer_ttl) if "approve" in caller.scopes else None
    )
    return thread_out(thread, link, Redaction.of(config.runtime, thread))


@router.post(
    "/{thread_id}/events",
    status_code=201,
    operation_id="send_event",
    summary="Send an outside event to a thread",
    responses={
        200: {"model": Launched, "description": "A replay: this Idempotency-Key delivered it before"},
        **error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    },
)
async def send_event(
    thread_id: ThreadId,
    body: EventBody,
    request: Request,
    response: Response,
    _: Annotated[Caller, Depends(require("write"))],
    key: IdempotencyKey = None,
) -> Launched:
    """Append an event; a thread waiting for a person resumes (one waiting for approval keeps waiting).

    While a tool of the thread runs, the request waits for its result (up to 30 s), so the event
    lands after that step, never inside it; after that it is a 503 with nothing added.
    """
    event = outside_event(body)
    try:
        thread = await config_of(request).runtime.send_event(thread_id, event, idempotency_key=key)
    except ThreadBusy as exc:
        raise ApiError(503, "thread_busy", str(exc), headers={"Retry-After": "5"}) from None
    again = thread.find(event.id) is None  # the key's first delivery added it, as another event
    if again:
        replayed(response)
    return Launched(thread_id=thread.id, status=thread.status, replayed=again)


@router.post(
    "/{thread_id}/fork",
    status_code=201,
    operation_id="fork_thread",
    summary="Fork a thread at an event",
    responses=error_responses(400, 401, 403, 404, 413, 422, 503),
)
async def fork(
    thread_id: ThreadId, body: ForkBody, request: Request, _: Annotated[Caller, Depends(require("write"))]
) -> ThreadStatus:
    """A new thread with this one's events up to and including `at`; it runs from there.

    The status is the copy's as read right after it was stored: a worker may already have run it on.
    """
    runtime = config_of(request).runtime
    forked = await runtime.get(await runtime.fork(thread_id, body.at))
    return ThreadStatus(thread_id=forked.id, status=forked.status)


@router.post(
    "/{thread_id}/cancel",
    operation_id="cancel_thread",
    summary="Cancel a thread",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def cancel(
    thread_id: ThreadId,
    request: Request,
    _: Annotated[Caller, Depends(require("write"))],
    body: Annotated[CancelBody | None, Body()] = None,
    key: IdempotencyKey = None,
) -> ThreadStatus:
    """End the thread for good (`failed`, with the reason); nothing runs after it. One that has ended is a 409."""
    reason = (body or CancelBody()).reason
    runtime = config_of(request).runtime
    try:
        thread = await runtime.cancel(thread_id, reason, idempotency_key=key)
    except InvalidTransition as exc:
        raise await not_waiting(runtime, thread_id, exc) from None
    return ThreadStatus(thread_id=thread.id, status=thread.status)


for _module in (_decisions, _stream, _context):
    router.include_router(_module.router)
