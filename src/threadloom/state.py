"""Execution state derived from a thread's events (factor 5), as a left fold (factor 12).

Nothing here is stored beside the events: `advance(state, event)` is a pure function, and a
thread's state is `advance` folded over its events from `ThreadState()` (`fold(state, events)`
does that in one pass). `Thread` keeps the fold's latest value so that reading `thread.status`
is O(1), and recomputes it whenever a thread is built from events (JSON, fork, a store).

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Literal

from pydantic import JsonValue

from .events import (
    APPROVAL,
    BOOKKEEPING_EVENTS,
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
)

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
    "fold",
    "model_record",
]

Status = Literal["ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed"]
"""Where a thread stands; `sleeping` holds no process until its time (`wake_at`) or an outside event."""

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


_EMPTY: Final[Mapping[str, JsonValue]] = MappingProxyType({})
_WAITING: Final = frozenset({"waiting_approval", "waiting_human"})

# Each field of the fold's two frozen classes set directly (`object.__setattr__` looks the slot up
# by name on every call; the fold builds one state per appended event).
_SET_STATE: Final = tuple(ThreadState.__dict__[f.name].__set__ for f in fields(ThreadState))
_SET_CALL: Final = tuple(RunnableCall.__dict__[f.name].__set__ for f in fields(RunnableCall))


def advance(state: ThreadState, event: Event) -> ThreadState:
    """Fold one event into the state. Pure: the same inputs always give the same output.

    Args:
        state: The state after the events before `event`.
        event: The next event of the thread.

    Returns:
        The state after `event`.
    """
    return fold(state, (event,))


def fold(state: ThreadState, events: Iterable[Event]) -> ThreadState:  # noqa: C901 - one loop over locals on purpose: see the docstring
    """`advance` folded over `events` from `state`: the state after all of them, oldest first.

    This is the reducer itself (`advance` is this with one event). It keeps the state in local
    variables while it walks the events and builds the frozen `ThreadState` (and `RunnableCall`)
    once at the end, so a store's load, which folds every event of a thread, pays a few comparisons
    per event rather than a new state object for each.

    Args:
        state: The state before the first of `events`.
        events: The events, oldest first.

    Returns:
        The state after the last of `events` (`state` itself when there are none).
    """
    status: Status = state.status
    pending = state.pending
    initial = state.runnable
    # The runnable call as its parts; `r_args` None stands for "the call's own arguments", worked
    # out only for the call still runnable at the end (most calls finish a few events later).
    r_call: Event | None = None
    r_args: Mapping[str, JsonValue] | None = None
    r_started: Event | None = None
    if initial is not None:
        r_call, r_args, r_started = initial.call, initial.arguments, initial.started
    unresolved = state.unresolved
    counts: Mapping[str, int] = state.consecutive_errors
    counts_own: dict[str, int] | None = None  # `counts` once copied for changing
    model_errors = state.model_errors
    steps = state.steps
    wake_at = state.wake_at
    usage: Mapping[str, Usage] = state.usage
    usage_own: dict[str, Usage] | None = None
    event: Event | None = None
    for event in events:
        kind = event.type
        data = event.data
        # Narrowed by `isinstance`, not `cast`: `cast(dict[str, ...], ...)` builds the generic alias
        # at every event, a tenth of the fold's time.
        d: Mapping[str, JsonValue] = data if isinstance(data, dict) else _EMPTY
        if "model" in d and kind in MODEL_RECORD_EVENTS:
            record = d["model"]
            if isinstance(record, dict) and isinstance(name := record.get("name"), str):
                if usage_own is None:
                    usage = usage_own = dict(usage)
                usage_own[name] = (usage_own[name] + _usage(record)) if name in usage_own else _usage(record)
        if status == "failed":
            continue  # terminal: later events are kept but change nothing (but what they cost)
        match kind:
            case "tool_call":
                # Prefetched calls are made by code before the model runs (factor 13), not model steps.
                if not d.get("prefetch"):
                    steps += 1
                model_errors = 0
                r_args = r_started = None
                if d.get("policy") == "approval":
                    status, pending, r_call = "waiting_approval", event, None
                else:
                    status, pending, r_call = "ready", None, event
            case "tool_started":
                if r_call is not None and r_call.id == d.get("call_id"):
                    r_started = event
            case "tool_response":
                intent = d.get("intent")
                if counts and isinstance(intent, str) and intent in counts:
                    counts = counts_own = {k: v for k, v in counts.items() if k != intent}
                if status not in _WAITING:  # a thread waiting for a person keeps waiting
                    running = r_call
                    status, r_call, r_args, r_started, unresolved = "ready", None, None, None, None
                    if running is not None and _field(running, "policy") == "external":
                        status, wake_at = "sleeping", None  # the outcome comes from outside
            case "error":
                if d.get("source") == "model":
                    model_errors += 1
                    steps += 1
                else:
                    intent = str(d.get("intent"))
                    if counts_own is None:
                        counts = counts_own = dict(counts)
                    counts_own[intent] = counts_own.get(intent, 0) + 1
                if status not in _WAITING:  # the running call is finished, unless a person is awaited
                    status, r_call, r_args, r_started, unresolved = "ready", None, None, None, None
            case "approval":
                # A decision on nothing pending changes nothing (Thread.approve refuses it).
                if pending is not None and status == "waiting_approval" and d.get("call_id") == pending.id:
                    r_call = r_args = r_started = None
                    if d.get("approved") is True:
                        arguments = dict(_arguments(pending))
                        edits = d.get("edits")
                        if isinstance(edits, dict):
                            arguments.update(edits)
                        r_call, r_args = pending, MappingProxyType(arguments)
                    status, pending, steps = "ready", None, 0
            case "request_human_input" | "request_more_information":
                reason = d.get("reason")
                if not reason:
                    steps += 1
                if reason == "outcome_unknown":
                    unresolved = _runnable(r_call, r_args, r_started)
                status, pending, r_call, r_args, r_started, model_errors = "waiting_human", event, None, None, None, 0
            case "human_response":
                # An answer to "outcome unknown" decides what happens to the started call.
                if unresolved is not None and pending is not None and _field(pending, "reason") == "outcome_unknown":
                    decision = str(d.get("text") or "").strip().lower().replace(" ", "_")
                    if decision == "abort":
                        status, pending, r_call, r_args, r_started, unresolved = "failed", None, None, None, None, None
                        continue
                    if decision == "retry":
                        r_call, r_args, r_started = unresolved.call, unresolved.arguments, None
                    else:
                        r_call = r_args = r_started = None
                    unresolved = None
                # Resumed. A recorded call that has not run stays runnable.
                status, pending, model_errors, steps, wake_at = "ready", None, 0, 0, None
                counts, counts_own = _NO_COUNTS, None
            case "done_for_now":
                status, pending, r_call, r_args, r_started, model_errors = "done", None, None, None, None, 0
                steps += 1
            case "failed":
                status, pending, r_call, r_args, r_started = "failed", None, None, None, None
            case "wait_until":
                status, pending, wake_at = "sleeping", None, _time(event)
                steps += 1
            case _ if kind in BOOKKEEPING_EVENTS:
                pass  # a record of what threadloom or your code did: it wakes nothing
            case _:
                # Any other event comes from outside (user_input, a Slack message, a webhook):
                # it is a person or system speaking, so a waiting or finished thread resumes.
                # A call awaiting approval stays pending until someone decides on it; a recorded
                # call that has not run stays runnable: an outside event does not cancel it.
                if status != "waiting_approval":
                    status, pending, model_errors, steps, wake_at = "ready", None, 0, 0, None
                    counts, counts_own = _NO_COUNTS, None
    if event is None:
        return state
    if r_call is None:
        runnable = None
    elif (
        initial is not None and r_call is initial.call and r_args is initial.arguments and r_started is initial.started
    ):
        runnable = initial
    else:
        runnable = _runnable(r_call, r_args, r_started)
    return _state(
        status,
        pending,
        runnable,
        unresolved,
        counts if counts_own is None else MappingProxyType(counts_own),
        model_errors,
        steps,
        event.id,
        wake_at,
        usage if usage_own is None else MappingProxyType(usage_own),
    )


(
    _S_STATUS,
    _S_PENDING,
    _S_RUNNABLE,
    _S_UNRESOLVED,
    _S_ERRORS,
    _S_MODEL_ERRORS,
    _S_STEPS,
    _S_LAST,
    _S_WAKE,
    _S_USAGE,
) = _SET_STATE


def _state(
    status: Status,
    pending: Event | None,
    runnable: RunnableCall | None,
    unresolved: RunnableCall | None,
    consecutive_errors: Mapping[str, int],
    model_errors: int,
    steps: int,
    last_event_id: str,
    wake_at: datetime | None,
    usage: Mapping[str, Usage],
) -> ThreadState:
    """`ThreadState(...)` in half the time: the fold makes one for every appended event."""
    new = object.__new__(ThreadState)
    _S_STATUS(new, status)
    _S_PENDING(new, pending)
    _S_RUNNABLE(new, runnable)
    _S_UNRESOLVED(new, unresolved)
    _S_ERRORS(new, consecutive_errors)
    _S_MODEL_ERRORS(new, model_errors)
    _S_STEPS(new, steps)
    _S_LAST(new, last_event_id)
    _S_WAKE(new, wake_at)
    _S_USAGE(new, usage)
    return new


def _runnable(
    call: Event | None, arguments: Mapping[str, JsonValue] | None, started: Event | None
) -> RunnableCall | None:
    if call is None:
        return None
    new = object.__new__(RunnableCall)
    set_call, set_arguments, set_started = _SET_CALL
    set_call(new, call)
    set_arguments(new, _arguments(call) if arguments is None else arguments)
    set_started(new, started)
    return new


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


def _usage(record: Mapping[str, JsonValue]) -> Usage:
    return Usage(_count(record, "input_tokens"), _count(record, "output_tokens"), _count(record, "cached_tokens"))


def _count(record: Mapping[str, JsonValue], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _time(event: Event) -> datetime | None:
    until = _field(event, "until")
    try:
        moment = datetime.fromisoformat(str(until))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _field(event: Event, key: str) -> JsonValue:
    data = event.data
    return data.get(key) if isinstance(data, dict) else None


def _arguments(event: Event) -> Mapping[str, JsonValue]:
    arguments = _field(event, "arguments")
    return MappingProxyType(arguments) if isinstance(arguments, dict) else MappingProxyType({})
