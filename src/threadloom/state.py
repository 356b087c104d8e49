"""Execution state derived from a thread's events (factor 5), as a left fold (factor 12).

Nothing here is stored beside the events: `advance(state, event)` is a pure function, the
definition of what each event does, and a thread's state is `advance` folded over its events from
`ThreadState()` (`fold(state, events)`). `Thread` keeps the fold's latest value so that reading
`thread.status` is O(1), and recomputes it whenever a thread is built from events (JSON, fork, a
store's load) with a copy of the fold tuned for speed (`threadloom._fold`), which a property test
holds equal to `advance` folded.

The event types this fold understands, and the `data` each carries:

| type | data | effect |
| --- | --- | --- |
| `user_input` and any type not below | anything | resumes a `ready` / `done` / `waiting_human` / `sleeping` thread |
| `tool_call` | `{"intent", "arguments", "policy"}` | `auto`: runnable; `approval`: `waiting_approval` |
| `tool_started` | `{"call_id", "intent", "idempotency_key"}` | the runnable call is in flight |
| `approval` | `{"call_id", "approved", "edits", "feedback", "by"}` | approved: the call is runnable; rejected: `ready` |
| `tool_response` | `{"call_id", "intent", "result"}` | the tool's consecutive errors reset |
| `error` | `{"source": "tool" or "model", "message", "intent", "call_id", "error_type"}` | counts |
| `request_human_input` | `{"question", "context", "urgency", "format", "choices"}` | `waiting_human` |
| `request_more_information` | `{"message"}` | `waiting_human` |
| `human_response` | `{"request_id", "text", "by"}` | `ready`; error counts reset; `retry` / `abort` an unknown outcome |
| `done_for_now` | `{"message"}` | `done` |
| `wait_until` | `{"until", "reason"}` | `sleeping` with `wake_at` (any outside event wakes it) |
| `failed` | `{"reason"}` | `failed` (terminal) |
| bookkeeping: `note`, `note_*`, `human_contacted`, `run_error` | anything | nothing (`events.is_bookkeeping`) |

A bookkeeping event (`threadloom.events.is_bookkeeping`: the types in `BOOKKEEPING_EVENTS` and every
type starting with `note_`) records what threadloom or your code did: it leaves status, pending
request, wake time, counts and steps as they were, whatever the status (`tool_started` marks the
runnable call as started, and changes nothing else).

An event the model produced (a `tool_call`, a built-in intent, a model `error`) may also carry
`data["model"]`: the call that produced it, `{"name", "input_tokens", "output_tokens",
"cached_tokens", "latency_ms", "strategy", "stop_reason"}`. The fold totals those per model
(`ThreadState.usage`); the rendered context leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import reduce
from types import MappingProxyType
from typing import Final, Literal

from pydantic import JsonValue

from .events import (
    APPROVAL,
    DONE_FOR_NOW,
    ERROR,
    FAILED,
    HUMAN_RESPONSE,
    MODEL_RECORD_EVENTS,
    REQUEST_HUMAN_INPUT,
    REQUEST_MORE_INFORMATION,
    TOOL_CALL,
    TOOL_RESPONSE,
    TOOL_STARTED,
    USER_INPUT,
    WAIT_UNTIL,
    Event,
    is_bookkeeping,
)

__all__ = [
    "APPROVAL",
    "DONE_FOR_NOW",
    "ERROR",
    "FAILED",
    "HUMAN_RESPONSE",
    "MODEL_RECORD_EVENTS",
    "REQUEST_HUMAN_INPUT",
    "REQUEST_MORE_INFORMATION",
    "TOOL_CALL",
    "TOOL_RESPONSE",
    "TOOL_STARTED",
    "USER_INPUT",
    "WAIT_UNTIL",
    "RunnableCall",
    "Status",
    "ThreadState",
    "Usage",
    "advance",
    "fold",
    "model_record",
]

Status = Literal["ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed"]
"""Where a thread stands; `sleeping` holds no process until its time (`wake_at`) or an outside event."""

NO_COUNTS: Final[Mapping[str, int]] = MappingProxyType({})
WAITING: Final = frozenset({"waiting_approval", "waiting_human"})


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call (or, added up, many) consumed.

    Example:
        ```python
        from threadloom.models import Usage

        total = Usage(input_tokens=120, output_tokens=9, cached_tokens=100) + Usage(30, 4)
        assert total == Usage(input_tokens=150, output_tokens=13, cached_tokens=100, requests=2)
        ```
    """

    input_tokens: int = 0
    """Prompt tokens, cached ones included."""
    output_tokens: int = 0
    """Tokens the model wrote."""
    cached_tokens: int = 0
    """Prompt tokens served from the provider's cache (a part of `input_tokens`)."""
    requests: int = 1
    """Model calls counted here: 1 for one call's usage, the number of calls in a total."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.requests + other.requests,
        )


_NO_USAGE_BY_MODEL: Mapping[str, Usage] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RunnableCall:
    """A recorded tool call that may run now: an `auto` call, or an approved one."""

    call: Event
    """The `tool_call` event; its `id` is the call id."""
    arguments: Mapping[str, JsonValue]
    """The arguments to run with: the model's, with a reviewer's edits laid over them."""
    started: Event | None = None
    """The `tool_started` event when the call was started but has no result yet (a crash, or running)."""

    @property
    def intent(self) -> str:
        """The tool's name."""
        return str(data_field(self.call, "intent"))


@dataclass(frozen=True, slots=True)
class ThreadState:
    """Everything the loop and the runtime need to know about a thread, derived from its events."""

    status: Status = "ready"
    """Where the thread stands."""
    pending: Event | None = None
    """The event waiting for a person: an `approval` tool's call, or a human request."""
    runnable: RunnableCall | None = None
    """A recorded tool call to run before the model is asked again."""
    unresolved: RunnableCall | None = None
    """A started call whose outcome is unknown, while a person decides to retry it or not."""
    consecutive_errors: Mapping[str, int] = field(default_factory=lambda: NO_COUNTS)
    """Per tool, failures since its last success (reset when a human answers)."""
    model_errors: int = 0
    """Consecutive model outputs that were not a valid intent."""
    steps: int = 0
    """Model steps since a person last spoke (user input, answer or approval)."""
    last_event_id: str | None = None
    """The id of the newest event, the version an append extends."""
    wake_at: datetime | None = None
    """When a `sleeping` thread is due; None while it waits for an outside event."""
    usage: Mapping[str, Usage] = field(default_factory=lambda: _NO_USAGE_BY_MODEL)
    """Tokens used so far, per model name, totalled from the events' `model` records."""

    @property
    def waiting_reason(self) -> str | None:
        """Why the thread waits for a person, in one line, or None when it does not wait."""
        pending = self.pending
        if pending is None or self.status not in ("waiting_approval", "waiting_human"):
            return None
        if self.status == "waiting_approval":
            return f"approval to run `{data_field(pending, 'intent')}`"
        if pending.type == REQUEST_MORE_INFORMATION:
            return str(data_field(pending, "message"))
        return str(data_field(pending, "question"))


def advance(state: ThreadState, event: Event) -> ThreadState:
    """Fold one event into the state: the definition of what each event type does. Pure.

    Args:
        state: The state after the events before `event`.
        event: The next event of the thread.

    Returns:
        The state after `event`: its id is the new `last_event_id`, and a model call it records
        adds to `usage`, even in a `failed` thread (what was spent stays counted).
    """
    moved = state if state.status == "failed" else _transition(state, event)  # failed is terminal
    return replace(moved, last_event_id=event.id, usage=_add_usage(state.usage, event))


def fold(state: ThreadState, events: Iterable[Event]) -> ThreadState:
    """`advance` folded over `events`, oldest first, from `state`.

    `Thread` computes the same with a faster copy of this fold (`threadloom._fold`, held equal to
    this one by a property test), since a store's load folds every event of a thread.
    """
    return reduce(advance, events, state)


def _transition(state: ThreadState, event: Event) -> ThreadState:
    match event.type:
        case "tool_call":
            return _recorded_call(state, event)
        case "tool_started":
            running = state.runnable
            if running is None or running.call.id != data_field(event, "call_id"):
                return state
            return replace(state, runnable=replace(running, started=event))
        case "approval":
            return _decided(state, event)
        case "tool_response":
            return _responded(state, event)
        case "error":
            if data_field(event, "source") == "model":
                return _settle(state, model_errors=state.model_errors + 1, steps=state.steps + 1)
            counts = dict(state.consecutive_errors)
            intent = str(data_field(event, "intent"))
            counts[intent] = counts.get(intent, 0) + 1
            return _settle(state, consecutive_errors=MappingProxyType(counts))
        case "request_human_input" | "request_more_information":
            return _asked(state, event)
        case "human_response":
            return _answered(state, event)
        case "done_for_now":
            return replace(state, status="done", pending=None, runnable=None, model_errors=0, steps=state.steps + 1)
        case "failed":
            return replace(state, status="failed", pending=None, runnable=None)
        case "wait_until":
            return replace(state, status="sleeping", pending=None, wake_at=wake_time(event), steps=state.steps + 1)
        case kind if is_bookkeeping(kind):
            return state  # a record of what threadloom or your code did: it wakes nothing
        case _:
            # Any other event comes from outside (user_input, a Slack message, a webhook): someone
            # speaking, so a waiting or finished thread resumes. A call awaiting approval stays
            # pending until someone decides on it; a recorded call that has not run stays runnable.
            return state if state.status == "waiting_approval" else _resume(state)


def _recorded_call(state: ThreadState, call: Event) -> ThreadState:
    # Prefetched calls are made by code before the model runs (factor 13), not model steps.
    steps = state.steps + (0 if data_field(call, "prefetch") else 1)
    if data_field(call, "policy") == "approval":
        return replace(state, status="waiting_approval", pending=call, runnable=None, model_errors=0, steps=steps)
    runnable = RunnableCall(call=call, arguments=call_arguments(call))
    return replace(state, status="ready", pending=None, runnable=runnable, model_errors=0, steps=steps)


def _decided(state: ThreadState, approval: Event) -> ThreadState:
    pending = state.pending
    if pending is None or state.status != "waiting_approval" or data_field(approval, "call_id") != pending.id:
        return state  # a decision on nothing pending changes nothing (Thread.approve refuses it)
    if data_field(approval, "approved") is not True:
        return replace(state, status="ready", pending=None, runnable=None, steps=0)
    arguments = dict(call_arguments(pending))
    edits = data_field(approval, "edits")
    if isinstance(edits, dict):
        arguments.update(edits)
    runnable = RunnableCall(call=pending, arguments=MappingProxyType(arguments))
    return replace(state, status="ready", pending=None, runnable=runnable, steps=0)


def _responded(state: ThreadState, response: Event) -> ThreadState:
    intent = data_field(response, "intent")
    counts = MappingProxyType({k: v for k, v in state.consecutive_errors.items() if k != intent})
    settled = _settle(state, consecutive_errors=counts)
    running = state.runnable
    if running is not None and settled.status == "ready" and data_field(running.call, "policy") == "external":
        return replace(settled, status="sleeping", wake_at=None)  # the outcome comes from outside
    return settled


def _asked(state: ThreadState, request: Event) -> ThreadState:
    reason = data_field(request, "reason")
    return replace(
        state,
        status="waiting_human",
        pending=request,
        runnable=None,
        # Asked whether a started call ran: the call waits beside the question for its answer.
        unresolved=state.runnable if reason == "outcome_unknown" else state.unresolved,
        model_errors=0,
        steps=state.steps + (0 if reason else 1),  # an escalation (a reason) is not a model step
    )


def _answered(state: ThreadState, answer: Event) -> ThreadState:
    unresolved, pending = state.unresolved, state.pending
    if unresolved is None or pending is None or data_field(pending, "reason") != "outcome_unknown":
        return _resume(state)  # a recorded call that has not run stays runnable
    # An answer to "outcome unknown" decides what happens to the started call.
    decision = str(data_field(answer, "text") or "").strip().lower().replace(" ", "_")
    if decision == "abort":
        return replace(state, status="failed", pending=None, runnable=None, unresolved=None)
    runnable = replace(unresolved, started=None) if decision == "retry" else None
    return replace(_resume(state), runnable=runnable, unresolved=None)


def _settle(state: ThreadState, **changes: object) -> ThreadState:
    """A finished call (a result or an error): the thread is ready, unless a person is awaited."""
    if state.status in WAITING:
        return replace(state, **changes)
    return replace(state, status="ready", runnable=None, unresolved=None, **changes)


def _resume(state: ThreadState) -> ThreadState:
    """Someone spoke: the thread is ready, with its counts and steps started afresh."""
    return replace(
        state, status="ready", pending=None, consecutive_errors=NO_COUNTS, model_errors=0, steps=0, wake_at=None
    )


def _add_usage(usage: Mapping[str, Usage], event: Event) -> Mapping[str, Usage]:
    record = model_record(event)
    if record is None:
        return usage
    name, used = str(record["name"]), record_usage(record)
    return MappingProxyType({**usage, name: usage[name] + used if name in usage else used})


def model_record(event: Event) -> Mapping[str, JsonValue] | None:
    """The model call recorded with `event` (`data["model"]`), or None when it carries none.

    Only the events an agent writes for a model's answer count (`MODEL_RECORD_EVENTS`), so an
    outside event whose payload happens to have a `model` key is never mistaken for one.
    """
    if event.type not in MODEL_RECORD_EVENTS or not isinstance(event.data, dict):
        return None
    record = event.data.get("model")
    if isinstance(record, dict) and isinstance(record.get("name"), str):
        return record
    return None


# -- reading event data (shared with the fast fold, not public API) ---------------------------------


def record_usage(record: Mapping[str, JsonValue]) -> Usage:
    """The `Usage` of one model record; a count that is not a positive int counts as 0."""
    return Usage(_count(record, "input_tokens"), _count(record, "output_tokens"), _count(record, "cached_tokens"))


def _count(record: Mapping[str, JsonValue], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def wake_time(event: Event) -> datetime | None:
    """A `wait_until` event's `until` in UTC (naive means UTC), or None if unreadable.

    A time whose UTC falls outside years 1-9999 (`9999-12-31T23:00-05:00`) is the nearest one
    inside: every store can hold it, and a wake that far off or that long past means the same.
    """
    until = data_field(event, "until")
    try:
        moment = datetime.fromisoformat(str(until))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return _LATEST if moment.year == _LATEST.year else _EARLIEST


def data_field(event: Event, key: str) -> JsonValue:
    """`event.data[key]`, or None when the data is not an object or lacks the key."""
    data = event.data
    return data.get(key) if isinstance(data, dict) else None


def call_arguments(event: Event) -> Mapping[str, JsonValue]:
    """A `tool_call`'s recorded arguments, read-only (empty when they are not an object)."""
    arguments = data_field(event, "arguments")
    return MappingProxyType(arguments) if isinstance(arguments, dict) else MappingProxyType({})
