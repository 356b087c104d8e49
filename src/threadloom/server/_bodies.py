"""The HTTP API's request and response bodies: what `/openapi.json` documents and every route validates.

Requests refuse fields they do not know (a typo is a 422, not a silent default). Responses are
built from a `Thread` or a `ThreadSummary` by the functions at the end, so every route that shows a
thread shows it the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from ..events import MAX_ID_LENGTH, Event
from ..models import cost
from ..state import Status, Usage
from ..store import ThreadSummary
from ..thread import Thread
from ._params import NO_NUL
from ._redaction import Redaction

__all__ = [
    "AnswerBody",
    "CancelBody",
    "ContextOut",
    "DecisionBody",
    "ErrorBody",
    "EventBody",
    "EventOut",
    "ForkBody",
    "LaunchBody",
    "MessageOut",
    "Launched",
    "PendingOut",
    "StepOut",
    "ThreadOut",
    "ThreadPage",
    "ThreadStatus",
    "ThreadSummaryOut",
    "UsageOut",
    "error_responses",
    "event_out",
    "summary_out",
    "thread_out",
]

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_NUL)]
"""A thread's, an event's or an agent's id, as a store keeps it."""
EventType = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[a-z][a-z0-9_]*$", examples=["slack_message"])
]
Text = Annotated[str, Field(max_length=100_000)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventBody(_Request):
    """An outside event: a message, a webhook's payload, a reply."""

    type: EventType
    """What happened, in snake_case (`user_input`, `slack_message`, `deploy_finished`, ...).
    threadloom's own types (`tool_call`, `approval`, ...) are written by the runtime only: 422."""
    data: JsonValue = None
    """Its payload: any JSON value; the model sees every key of it."""


class LaunchBody(_Request):
    """`POST /v1/threads`: start a thread of `agent` with its first event."""

    agent: Id
    """The agent's name; one the server does not run is a 422."""
    event: EventBody
    """The first event."""
    # At least one character that is not a dot: `.` and `..` are dot segments, which clients resolve away.
    thread_id: (
        Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00/]*[^\x00/.][^\x00/]*$")] | None
    ) = None
    """The new thread's id, if the caller picks it (an id already taken is a 409; no `/` and not only dots: it goes in paths)."""
    metadata: dict[str, JsonValue] | None = None
    """JSON facts kept with the thread (`agent` is set by the server)."""


class DecisionBody(_Request):
    """`POST /v1/threads/{thread_id}/approvals/{call_id}`: approve or reject the call waiting for approval."""

    decision: Literal["approve", "reject"]
    """What the person decided."""
    edits: dict[str, JsonValue] | None = None
    """Arguments to change before an approved call runs (the tool's parameters, by name)."""
    feedback: Text | None = None
    """Why a call was rejected, for the model."""

    @model_validator(mode="after")
    def _fits_the_decision(self) -> Self:
        if self.decision == "approve" and self.feedback is not None:
            raise ValueError("feedback goes with a rejection; an approval takes `edits`")
        if self.decision == "reject" and self.edits is not None:
            raise ValueError("edits go with an approval; a rejection takes `feedback`")
        return self


class AnswerBody(_Request):
    """`POST /v1/threads/{thread_id}/responses/{request_id}`: answer the human request, in words or by a choice."""

    text: Text | None = None
    """A free answer."""
    choice: Text | None = None
    """One of the request's `choices`, spelled exactly as it lists it (a request without choices takes `text`)."""

    @model_validator(mode="after")
    def _one_of_them(self) -> Self:
        if (self.text is None) == (self.choice is None):
            raise ValueError("give either `text` or `choice`, not both or neither")
        return self


class ForkBody(_Request):
    """`POST /v1/threads/{thread_id}/fork`: copy the thread up to and including one event."""

    at: Id
    """The id of the last event the fork keeps."""


class CancelBody(_Request):
    """`POST /v1/threads/{thread_id}/cancel`: end the thread for good."""

    reason: Annotated[str, Field(min_length=1, max_length=1_000)] = "cancelled"
    """Why, for the log."""


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Launched(_Response):
    """A thread launched, or an event added; `replayed` when the `Idempotency-Key` was delivered before."""

    thread_id: str
    status: Status
    replayed: bool = False
    """True when nothing new happened: this key's first request did it (the answer is then 200)."""


class ThreadStatus(_Response):
    """Where a thread stands after a change."""

    thread_id: str
    status: Status


class EventOut(_Response):
    """One event of a thread's log."""

    id: str
    type: str
    data: JsonValue
    """The event's data, its secrets shown as `[REDACTED]` (its model record, `model`, as it is)."""
    at: datetime


class PendingOut(_Response):
    """What the thread waits for a person about: the `tool_call` to approve, or the human request."""

    id: str
    """The `call_id` (approvals) or `request_id` (responses) to answer with."""
    type: str
    """`tool_call`, `request_human_input` or `request_more_information`."""
    data: JsonValue
    """The call's intent and arguments, or the question and its choices; secrets shown as `[REDACTED]`."""
    at: datetime
    """When it was asked."""
    reason: str | None
    """What the thread waits for, in one line."""
    answer_url: str | None
    """The answer link: whoever holds it may answer this one request, with no API key, until it expires.

    Null for a key without the `approve` scope, since the link would let that key answer.
    """


class UsageOut(_Response):
    """Tokens model calls consumed."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    requests: int
    """Model calls."""


class CostOut(_Response):
    """What the model calls cost, in US dollars, at the built-in prices."""

    total: float
    by_model: dict[str, float]
    unpriced: list[str]
    """Models that used tokens but have no price (left out of `total`)."""


class ThreadOut(_Response):
    """`GET /v1/threads/{thread_id}`: the thread's log and what is derived from it."""

    thread_id: str
    status: Status
    agent: str | None
    metadata: dict[str, JsonValue]
    """The facts kept with the thread, its secrets shown as `[REDACTED]`."""
    events: list[EventOut]
    pending: PendingOut | None
    wake_at: datetime | None
    """When a sleeping thread is due."""
    usage: UsageOut
    usage_by_model: dict[str, UsageOut]
    cost: CostOut


class ThreadSummaryOut(_Response):
    """One thread of a listing (no events)."""

    thread_id: str
    status: Status
    agent: str | None
    parent_id: str | None
    """The thread it was forked from."""
    events: int
    updated_at: datetime
    wake_at: datetime | None


class ThreadPage(_Response):
    """`GET /v1/threads`: a page, newest first."""

    threads: list[ThreadSummaryOut]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last one."""


class ToolCallOut(_Response):
    """A tool call inside an assistant message."""

    id: str
    name: str
    arguments: str
    """The arguments as a JSON object string."""


class MessageOut(_Response):
    """One message exactly as the model got it, and its tokens."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: list[ToolCallOut]
    tool_call_id: str | None
    tokens: int
    """Content, tool calls and the per-message overhead, by the step's `counter`."""


class StepOut(_Response):
    """One model call: the event its answer became and the messages it got."""

    event_id: str
    type: str
    at: datetime
    model: str
    messages: list[MessageOut]
    tokens: int
    """The messages' tokens in all."""
    counter: str
    """What counted them: a tokenizer's name, or the estimate."""
    exact: bool
    """False when `counter` is an estimate or another model's tokenizer."""
    reported_input_tokens: int
    """What the model's provider counted for the call."""
    hooked: bool
    """The agent has `before_model`, so the model may have got a changed thread (not called again here)."""
    error: str | None
    """Why the messages could not be rendered again; they are empty then."""


class ContextOut(_Response):
    """`GET /v1/threads/{thread_id}/context`: every model step of the thread, oldest first."""

    thread_id: str
    agent: str
    steps: list[StepOut]


class _ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # a 409 `not_waiting` adds `thread_status`, `pending_id`, `waiting_for`

    code: str
    """Stable, for programs: `thread_not_found`, `not_waiting`, `idempotency_key_reused`, ..."""
    message: str
    """For people."""


class ErrorBody(BaseModel):
    """Every error: `{"error": {"code", "message"}}` (a few codes add fields beside them)."""

    error: _ErrorDetail


def _usage(used: Usage) -> UsageOut:
    return UsageOut(
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cached_tokens=used.cached_tokens,
        requests=used.requests,
    )


def event_out(event: Event, redaction: Redaction) -> EventOut:
    """One event as the API shows it (a thread read, its stream): its secrets redacted."""
    return EventOut(id=event.id, type=event.type, data=redaction.event_data(event), at=event.at)


def thread_out(thread: Thread, answer_url: str | None, redaction: Redaction) -> ThreadOut:
    """The body of `GET /v1/threads/{thread_id}`; `answer_url` is the pending request's link, or None.

    Event data, the pending request's and the metadata are shown through `redaction`: any key that
    may read would otherwise see a tool's secret arguments.
    """
    pending = thread.pending
    spent = cost(thread)
    agent = thread.metadata.get("agent")
    metadata = redaction.apply(dict(thread.metadata))
    return ThreadOut(
        thread_id=thread.id,
        status=thread.status,
        agent=agent if isinstance(agent, str) else None,
        metadata=metadata if isinstance(metadata, dict) else {},
        events=[event_out(e, redaction) for e in thread.events],
        pending=None
        if pending is None
        else PendingOut(
            id=pending.id,
            type=pending.type,
            data=redaction.event_data(pending),
            at=pending.at,
            reason=thread.waiting_reason,
            answer_url=answer_url,
        ),
        wake_at=thread.state.wake_at,
        usage=_usage(thread.usage),
        usage_by_model={name: _usage(used) for name, used in thread.usage_by_model.items()},
        cost=CostOut(total=spent.total, by_model=dict(spent.by_model), unpriced=list(spent.unpriced)),
    )


def summary_out(summary: ThreadSummary) -> ThreadSummaryOut:
    """One row of `GET /v1/threads`."""
    return ThreadSummaryOut(
        thread_id=summary.thread_id,
        status=summary.status,
        agent=summary.agent,
        parent_id=summary.parent_id,
        events=summary.events,
        updated_at=summary.updated_at,
        wake_at=summary.wake_at,
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's errors, so that every error it answers is documented."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


_MEANING = {
    400: "The body cannot be read: not JSON text in UTF-8",
    401: "No API key, or one the server does not know",
    403: "The key lacks the scope this needs; nothing was changed",
    404: "No thread has this id",
    409: "A conflict: the thread does not wait for this, the id is taken, or the Idempotency-Key was used for another request",
    413: "The body is over the server's limit",
    422: "The request is not valid; nothing was changed",
    503: "The store cannot be reached, or a running tool kept the event waiting too long; try again",
}
