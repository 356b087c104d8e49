"""`Event` and the event-type names: what a thread records (factor 5).

Every event is either *input* (a person, a system or the model said something: `user_input`, a
webhook, a `tool_call`, ...) or *bookkeeping* (a record of what threadloom or your code did:
`tool_started`, a delivery to a person, a note). Which one is decided by the event's type alone,
by `is_bookkeeping`: the types in `BOOKKEEPING_EVENTS`, and any type that starts with
`BOOKKEEPING_PREFIX` (`note_`), such as `note_slack_message_sent` or `note_eval_scored`. So the rule
needs no registration and no setting: every process folds and renders a stored thread the same way,
and a thread started before your code wrote its first `note_...` event treats it the same as a new one.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Final, cast

from pydantic import JsonValue

from .exceptions import UserError

__all__ = [
    "APPROVAL",
    "BOOKKEEPING_EVENTS",
    "BOOKKEEPING_PREFIX",
    "DONE_FOR_NOW",
    "ERROR",
    "FAILED",
    "HUMAN_CONTACTED",
    "HUMAN_RESPONSE",
    "MAX_ID_LENGTH",
    "MODEL_RECORD_EVENTS",
    "NOTE",
    "REQUEST_HUMAN_INPUT",
    "REQUEST_MORE_INFORMATION",
    "RUNTIME_EVENTS",
    "RUN_ERROR",
    "TOOL_CALL",
    "TOOL_RESPONSE",
    "TOOL_STARTED",
    "USER_INPUT",
    "WAIT_UNTIL",
    "WAKE_UP",
    "Event",
    "is_bookkeeping",
    "new_id",
    "storable_text",
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
WAKE_UP: Final = "wake_up"
"""The event that ends a `wait_until` when its time has come."""

MODEL_RECORD_EVENTS: Final = frozenset(
    {TOOL_CALL, ERROR, DONE_FOR_NOW, REQUEST_HUMAN_INPUT, REQUEST_MORE_INFORMATION, WAIT_UNTIL}
)
"""The event types an agent writes for a model's answer: only these may carry a `model` record."""

HUMAN_CONTACTED: Final = "human_contacted"
NOTE: Final = "note"
RUN_ERROR: Final = "run_error"
BOOKKEEPING_EVENTS: Final = frozenset({TOOL_STARTED, HUMAN_CONTACTED, NOTE, RUN_ERROR})
"""threadloom's own bookkeeping types: records of what was done, never input (see `is_bookkeeping`)."""
RUNTIME_EVENTS: Final = frozenset(
    {
        TOOL_CALL,
        TOOL_STARTED,
        APPROVAL,
        TOOL_RESPONSE,
        ERROR,
        REQUEST_HUMAN_INPUT,
        REQUEST_MORE_INFORMATION,
        HUMAN_RESPONSE,
        DONE_FOR_NOW,
        WAIT_UNTIL,
        FAILED,
        HUMAN_CONTACTED,
        RUN_ERROR,
    }
)
"""The types only threadloom writes (the agent, the runtime, a decision): never accepted as outside input."""
BOOKKEEPING_PREFIX: Final = "note_"
"""Your own bookkeeping types start with this, e.g. `note_slack_message_sent` (see `is_bookkeeping`)."""


def is_bookkeeping(event_type: str) -> bool:
    """Whether events of this type are bookkeeping: a record of what was done, never input.

    A bookkeeping event leaves a thread's status, pending request, wake time and counts as they
    were (it wakes nothing, resolves nothing), and the renderer leaves it out by default. They are
    the types in `BOOKKEEPING_EVENTS` and every type starting with `BOOKKEEPING_PREFIX` (`note_`);
    every other type that is not threadloom's own is outside input, which resumes a waiting thread.
    The rule reads the type alone, so any process decides the same for a stored thread.

    Args:
        event_type: An event's `type`.

    Returns:
        True for a bookkeeping type.

    Example:
        ```python
        from threadloom import Event, Thread
        from threadloom.events import is_bookkeeping

        asked = Thread.start("user_input", "hi").append(Event("request_human_input", {"question": "which env?"}))
        sent = asked.append(Event("note_slack_message_sent", {"channel": "#deploys", "ts": "171.2"}))
        assert is_bookkeeping("note_slack_message_sent") and not is_bookkeeping("slack_message")
        assert sent.status == "waiting_human" and sent.pending == asked.pending
        assert asked.append(Event("slack_message", {"text": "prod"})).status == "ready"  # input wakes it
        ```
    """
    return event_type in BOOKKEEPING_EVENTS or event_type.startswith(BOOKKEEPING_PREFIX)


_SURROGATE = re.compile("[\ud800-\udfff]")
_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_MAX_DEPTH = 64
MAX_ID_LENGTH: Final = 200
"""The longest event id, thread id or event type a store is asked to keep (ids from `new_id` have 23)."""


def new_id(prefix: str) -> str:
    """A fresh random id such as `ev_3f9a1c0b7d2e4a6b8c1d`: 80 random bits, safe to show a model."""
    return f"{prefix}_{secrets.token_hex(10)}"


def _now() -> datetime:
    return datetime.now(UTC)


def _new_event_id() -> str:
    return new_id("ev")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a thread: a message, a tool call, a result, an error, a decision.

    Example:
        ```python
        from threadloom import Event

        event = Event("slack_message", {"from": "@alex", "text": "deploy the backend"})
        assert event.type == "slack_message" and event.id.startswith("ev_")
        ```
    """

    type: str
    """What happened, in snake_case: `user_input`, `tool_call`, `tool_response`, `error`, ..."""
    data: JsonValue = None
    """The payload: any JSON value (dicts with string keys, lists, strings, finite numbers, ...)."""
    _: KW_ONLY
    id: str = field(default_factory=_new_event_id)
    """Unique id; a `tool_call`'s id is its `call_id`, a human request's its `request_id`."""
    at: datetime = field(default_factory=_now)
    """When it happened, in UTC."""

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _TYPE_PATTERN.fullmatch(self.type):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError(f"event type {self.type!r} must be snake_case, like 'slack_message' or 'tool_call'")
        if len(self.type) > MAX_ID_LENGTH:
            raise UserError(f"event type {self.type[:40]!r}... is {len(self.type)} characters; at most {MAX_ID_LENGTH}")
        if problem := id_problem(self.id, "event id"):
            raise UserError(problem)
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError(f"event `at` must be a timezone-aware datetime, got {self.at!r}")
        if self.at.utcoffset():
            object.__setattr__(self, "at", self.at.astimezone(UTC))
        problem = json_problem(self.data, "data", 0)
        if problem:
            raise UserError(f"event {self.type!r}: {problem}; convert it to JSON values first")


def restored_event(type: str, data: JsonValue, event_id: str, at: datetime) -> Event:
    """An `Event` from a store's own row, which held a valid event when it was written (not public API).

    The JSON walk of `Event.__post_init__` is skipped: `data` was checked when the event was made and
    comes back from `json.loads` (the store refuses NaN and Infinity), so checking it again on every
    load is the same validation done twice. The time is still normalised to UTC.
    """
    event = object.__new__(Event)
    _SET_TYPE(event, type)
    _SET_DATA(event, data)
    _SET_ID(event, event_id)
    _SET_AT(event, at if not at.utcoffset() else at.astimezone(UTC))
    return event


def restored_events(
    types: Sequence[str], datas: Sequence[JsonValue], ids: Sequence[str], ats: Sequence[datetime]
) -> list[Event]:
    """`restored_event` for whole columns of a store's rows, whose times are already in UTC (not public API).

    A store's load makes thousands of events at once: this fills each field of all of them with one
    `map` running in C, about half the time of a call per event.
    """
    events: list[Event] = list(map(object.__new__, repeat(Event, len(ids))))
    columns: tuple[tuple[Callable[[Event, object], None], Sequence[object]], ...] = (
        (_SET_TYPE, types),
        (_SET_DATA, datas),
        (_SET_ID, ids),
        (_SET_AT, ats),
    )
    for set_, column in columns:
        deque[None](map(set_, events, column), maxlen=0)
    return events


# Event's fields set directly, past the frozen dataclass's `__setattr__` (which refuses).
_SET_TYPE: Final = Event.__dict__["type"].__set__
_SET_DATA: Final = Event.__dict__["data"].__set__
_SET_ID: Final = Event.__dict__["id"].__set__
_SET_AT: Final = Event.__dict__["at"].__set__


def id_problem(value: object, what: str) -> str | None:
    """Why `value` cannot be an id a store keeps as text (None if it can), naming `what` (not public API).

    An id is a non-empty string of at most `MAX_ID_LENGTH` characters with no NUL (PostgreSQL's
    text cannot hold it) and no lone surrogate (UTF-8 cannot).
    """
    if not isinstance(value, str) or not value:
        return f"{what} {value!r} must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} {value[:40]!r}... is {len(value)} characters; at most {MAX_ID_LENGTH}"
    if "\x00" in value:
        return f"{what} {value!r} holds a NUL character, which a store's text cannot hold"
    return _text_problem(value, what)


def json_problem(value: object, path: str, depth: int) -> str | None:
    """Why `value` is not a JSON value a store can hold (None if it is), naming where (not public API)."""
    if depth > _MAX_DEPTH:
        return f"{path} is nested deeper than {_MAX_DEPTH} levels"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, int):
        # Python refuses to write an int of more than 4,300 digits as text (CVE-2020-10735), so
        # neither JSON nor a store could hold it; 14,000 bits is well under that.
        return None if value.bit_length() <= 14_000 else f"{path} is an int too large to store as JSON"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}, which JSON cannot hold"
    if isinstance(value, list):
        for i, item in enumerate(cast(list[object], value)):
            if problem := json_problem(item, f"{path}[{i}]", depth + 1):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in cast(dict[object, object], value).items():
            if not isinstance(key, str):
                return f"{path} has a non-string key {key!r}"
            if problem := _text_problem(key, f"{path} key"):
                return problem
            if problem := json_problem(item, f"{path}.{key}", depth + 1):
                return problem
        return None
    return f"{path} holds a {type(value).__name__}, not a JSON value"


def _text_problem(text: str, path: str) -> str | None:
    # An ASCII string is always storable (CPython knows it without a scan); another one is unless it
    # holds a lone surrogate, which no UTF-8 text (SQLite's, PostgreSQL's, a JSON file's) can hold.
    if text.isascii():
        return None
    try:
        text.encode()
    except UnicodeEncodeError:
        return (
            f"{path} holds a lone surrogate ({text.encode(errors='backslashreplace')[:40]!r}), which UTF-8 cannot hold"
        )
    return None


def storable_text(text: str) -> str:
    """`text` with each lone surrogate (which UTF-8 cannot hold) replaced by U+FFFD.

    For raw text kept as it came, such as a model's unusable answer: any other string is returned as is.

    Example:
        ```python
        from threadloom.events import storable_text

        assert storable_text("ok" + chr(0xD800)) == "ok" + chr(0xFFFD) and storable_text("plain") == "plain"
        ```
    """
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def refuse_events(items: Iterable[object]) -> None:
    """Raise for the first item that is not an `Event` or repeats an earlier event's id."""
    seen: set[str] = set()
    for event in items:
        if not isinstance(event, Event):
            raise UserError(f"a thread holds Event objects, got {type(event).__name__}")
        if event.id in seen:
            raise UserError(f"event id {event.id!r} appears twice in the thread")
        seen.add(event.id)
