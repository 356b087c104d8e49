"""Execution state derived from a thread's events (factor 5), as a left fold (factor 12).

Nothing here is stored beside the events: `advance(state, event)` is a pure function, and a
thread's state is `advance` folded over its events from `ThreadState()`. `Thread` keeps the
fold's latest value so that reading `thread.status` is O(1), and recomputes it whenever a
thread is built from events (JSON, fork, a store).

The event types this fold understands, and the `data` each carries:

| type | data | effect |
| --- | --- | --- |
| `user_input` and any type not below | anything | resumes a `ready` / `done` / `waiting_human` thread |
| `tool_call` | `{"intent", "arguments", "policy"}` | `auto`: runnable; `approval`: `waiting_approval` |
| `tool_started` | `{"call_id", "intent", "idempotency_key"}` | the runnable call is in flight |
| `approval` | `{"call_id", "approved", "edits", "feedback"}` | approved: the call is runnable; rejected: `ready` |
| `tool_response` | `{"call_id", "intent", "result"}` | the tool's consecutive errors reset |
| `error` | `{"source": "tool" or "model", "message", "intent", "call_id", "error_type"}` | counts |
| `request_human_input` | `{"question", "context", "urgency", "format", "choices"}` | `waiting_human` |
| `request_more_information` | `{"message"}` | `waiting_human` |
| `human_response` | `{"request_id", "text"}` | `ready`; error counts reset; `retry` / `abort` an unknown outcome |
| `done_for_now` | `{"message"}` | `done` |
| `wait_until` | `{"until", "reason"}` | `sleeping` with `wake_at` (any outside event wakes it) |
| `failed` | `{"reason"}` | `failed` (terminal) |

An event the model produced (a `tool_call`, a built-in intent, a model `error`) may also carry
`data["model"]`: the call that produced it, `{"name", "input_tokens", "output_tokens",
"cached_tokens", "latency_ms", "strategy", "stop_reason"}`. The fold totals those per model
(`ThreadState.usage`); the rendered context leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from dataclasses import replace as _dataclass_replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from pydantic import JsonValue

if TYPE_CHECKING:
    from .events import Event

__all__ = [
    "APPROVAL",
    "DONE_FOR_NOW",
    "ERROR",
    "FAILED",
    "MODEL_RECORD_EVENTS",
    "HUMAN_RESPONSE",
    "REQUEST_HUMAN_INPUT",
    "REQUEST_MORE_INFORMATION",
    "TOOL_CALL",
    "TOOL_STARTED",
    "TOOL_RESPONSE",
    "USER_INPUT",
    "WAIT_UNTIL",
    "RunnableCall",
    "Status",
    "ThreadState",
    "Usage",
    "advance",
    "model_record",
]

USER_INPUT: Final = "user_input"
TOOL_CALL: Final = "tool_call"
TOOL_STARTED: Final = "tool_started"
APPROVAL: Final = "approval"
TOOL_RESPONSE: Final = "tool_response"
ERROR: Final = "error"
REQUEST_HUMAN_INPUT: Final = "request_human_input"
REQUEST_MORE_INFORMATION: Final = "request_more_information"
HUMAN_RESPONSE: Final = "human_response"
DONE_FOR_NOW: Final = "done_for_now"
WAIT_UNTIL: Final = "wait_until"
FAILED: Final = "failed"

Status = Literal["ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed"]
"""Where a thread stands; `sleeping` holds no process until its time (`wake_at`) or an outside event."""

MODEL_RECORD_EVENTS: Final = frozenset(
    {TOOL_CALL, ERROR, DONE_FOR_NOW, REQUEST_HUMAN_INPUT, REQUEST_MORE_INFORMATION, WAIT_UNTIL}
)
"""The event types an agent writes for a model's answer: only these may carry a `model` record."""

_HUMAN_REQUESTS: Final = frozenset({REQUEST_HUMAN_INPUT, REQUEST_MORE_INFORMATION})
_NO_COUNTS: Mapping[str, int] = MappingProxyType({})


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
        return str(_field(self.call, "intent"))


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
    consecutive_errors: Mapping[str, int] = field(default_factory=lambda: _NO_COUNTS)
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
            return f"approval to run `{_field(pending, 'intent')}`"
        if pending.type == REQUEST_MORE_INFORMATION:
            return str(_field(pending, "message"))
        return str(_field(pending, "question"))


_FIELDS: Final[dict[type[object], tuple[str, ...]]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in (ThreadState, RunnableCall)
}
_set = object.__setattr__


def replace(state: Any, **changes: Any) -> Any:
    """`dataclasses.replace` for the fold's two frozen classes, without re-running `__init__`.

    The fold calls it for every event a thread is built from (a store's load folds every event), and
    `dataclasses.replace` costs several times more: it rebuilds keyword arguments for every field.
    Neither class validates in `__init__`, so copying the fields is the same object `__init__` makes.
    """
    cls = cast(type[object], type(state))
    names = _FIELDS.get(cls)
    if names is None:
        return _dataclass_replace(state, **changes)
    new = object.__new__(cls)
    for name in names:
        _set(new, name, changes[name] if name in changes else getattr(state, name))
    return new


def advance(state: ThreadState, event: Event) -> ThreadState:
    """Fold one event into the state. Pure: the same inputs always give the same output.

    Args:
        state: The state after the events before `event`.
        event: The next event of the thread.

    Returns:
        The state after `event`.
    """
    new = _advance(state, event)
    record = model_record(event)
    if new is state:
        if record is None:
            return replace(state, last_event_id=event.id)
        return replace(state, last_event_id=event.id, usage=_add_usage(state.usage, record))
    # `new` was made just now by `replace` and nobody else holds it: set the id (and usage) in place
    # rather than copying the state a second time (the fold runs for every event a store loads).
    _set(new, "last_event_id", event.id)
    if record is not None:
        _set(new, "usage", _add_usage(new.usage, record))
    return new


def _advance(state: ThreadState, event: Event) -> ThreadState:
    """Where `event` takes the thread: status, pending call, counts."""
    if state.status == "failed":
        return state  # terminal: later events are kept but change nothing
    match event.type:
        case "tool_call":
            return _tool_call(state, event)
        case "tool_started":
            running = state.runnable
            if running is None or running.call.id != _field(event, "call_id"):
                return state
            return replace(state, runnable=replace(running, started=event))
        case "approval":
            return _approval(state, event)
        case "tool_response":
            counts = {k: v for k, v in state.consecutive_errors.items() if k != _field(event, "intent")}
            settled = _settled(state, consecutive_errors=MappingProxyType(counts))
            running = state.runnable
            if running is not None and settled.status == "ready" and _field(running.call, "policy") == "external":
                return replace(settled, status="sleeping", wake_at=None)  # the outcome comes from outside
            return settled
        case "error":
            return _error(state, event)
        case "request_human_input" | "request_more_information":
            steps = state.steps + (0 if _field(event, "reason") else 1)
            unresolved = state.runnable if _field(event, "reason") == "outcome_unknown" else state.unresolved
            return replace(
                state,
                status="waiting_human",
                pending=event,
                runnable=None,
                unresolved=unresolved,
                model_errors=0,
                steps=steps,
            )
        case "human_response":
            return _answered(state, event)
        case "done_for_now":
            return replace(state, status="done", pending=None, runnable=None, model_errors=0, steps=state.steps + 1)
        case "failed":
            return replace(state, status="failed", pending=None, runnable=None)
        case "wait_until":
            return replace(state, status="sleeping", pending=None, wake_at=_time(event), steps=state.steps + 1)
        case _:
            # Any other event comes from outside (user_input, a Slack message, a webhook):
            # it is a person or system speaking, so a waiting or finished thread resumes.
            # A call awaiting approval stays pending until someone decides on it.
            if state.status == "waiting_approval":
                return state
            return _resumed(state)


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


def _add_usage(totals: Mapping[str, Usage], record: Mapping[str, JsonValue]) -> Mapping[str, Usage]:
    name = str(record["name"])
    usage = Usage(_count(record, "input_tokens"), _count(record, "output_tokens"), _count(record, "cached_tokens"))
    merged = dict(totals)
    merged[name] = merged[name] + usage if name in merged else usage
    return MappingProxyType(merged)


def _count(record: Mapping[str, JsonValue], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _resumed(state: ThreadState) -> ThreadState:
    # A recorded call that has not run stays runnable: an outside event does not cancel it.
    return replace(
        state, status="ready", pending=None, consecutive_errors=_NO_COUNTS, model_errors=0, steps=0, wake_at=None
    )


def _time(event: Event) -> datetime | None:
    until = _field(event, "until")
    try:
        moment = datetime.fromisoformat(str(until))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _answered(state: ThreadState, event: Event) -> ThreadState:
    """A person's answer; to "outcome unknown" it decides what happens to the started call."""
    unresolved = state.unresolved
    if unresolved is None or state.pending is None or _field(state.pending, "reason") != "outcome_unknown":
        return _resumed(state)
    decision = str(_field(event, "text") or "").strip().lower().replace(" ", "_")
    if decision == "abort":
        return replace(state, status="failed", pending=None, runnable=None, unresolved=None)
    runnable = replace(unresolved, started=None) if decision == "retry" else None
    return replace(_resumed(state), runnable=runnable, unresolved=None)


def _tool_call(state: ThreadState, event: Event) -> ThreadState:
    # Prefetched calls are made by code before the model runs (factor 13), not model steps.
    steps = state.steps + (0 if _field(event, "prefetch") else 1)
    if _field(event, "policy") == "approval":
        return replace(state, status="waiting_approval", pending=event, runnable=None, model_errors=0, steps=steps)
    call = RunnableCall(call=event, arguments=_arguments(event))
    return replace(state, status="ready", pending=None, runnable=call, model_errors=0, steps=steps)


def _approval(state: ThreadState, event: Event) -> ThreadState:
    pending = state.pending
    if pending is None or state.status != "waiting_approval" or _field(event, "call_id") != pending.id:
        return state  # a decision on nothing pending changes nothing (Thread.approve refuses it)
    if _field(event, "approved") is True:
        arguments = dict(_arguments(pending))
        edits = _field(event, "edits")
        if isinstance(edits, dict):
            arguments.update(edits)
        call = RunnableCall(call=pending, arguments=MappingProxyType(arguments))
        return replace(state, status="ready", pending=None, runnable=call, steps=0)
    return replace(state, status="ready", pending=None, runnable=None, steps=0)


def _error(state: ThreadState, event: Event) -> ThreadState:
    if _field(event, "source") == "model":
        return _settled(state, model_errors=state.model_errors + 1, steps=state.steps + 1)
    intent = str(_field(event, "intent"))
    counts = dict(state.consecutive_errors)
    counts[intent] = counts.get(intent, 0) + 1
    return _settled(state, consecutive_errors=MappingProxyType(counts))


def _settled(state: ThreadState, **changes: Any) -> ThreadState:
    """A tool's outcome: the running call is finished.

    A thread waiting for a person keeps waiting: only that person's decision or answer releases it.
    """
    if state.status in ("waiting_approval", "waiting_human"):
        return replace(state, **changes)
    return replace(state, status="ready", runnable=None, unresolved=None, **changes)


def _field(event: Event, key: str) -> JsonValue:
    data = event.data
    return data.get(key) if isinstance(data, dict) else None


def _arguments(event: Event) -> Mapping[str, JsonValue]:
    arguments = _field(event, "arguments")
    return MappingProxyType(arguments) if isinstance(arguments, dict) else MappingProxyType({})
