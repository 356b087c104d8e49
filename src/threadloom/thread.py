"""`Thread` and `EventLog`: an append-only list of typed events, an agent's only state (factor 5)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice, repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final, overload

from pydantic import JsonValue

from ._answers import check_choice, check_edits, check_fork, check_pending, decided
from ._fold import fold
from ._thread_json import dump_thread, load_thread
from .events import APPROVAL, HUMAN_RESPONSE, Event, id_problem, json_problem, new_id, refuse_events
from .exceptions import ThreadDecodeError, UserError
from .state import Status, ThreadState, Usage

__all__ = ["EventLog", "Thread"]


class EventLog(Sequence[Event]):
    """An immutable view of a thread's events: indexable, sliceable, iterable, like a tuple.

    Threads that extend one another share one underlying list, so appending does not copy
    the events; each view sees only its own prefix. Compare with `==` to a tuple or list.
    """

    __slots__ = ("_items", "_size")

    def __init__(self, items: list[Event], size: int) -> None:
        self._items = items
        self._size = size

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Event, ...]: ...
    def __getitem__(self, index: int | slice) -> Event | tuple[Event, ...]:
        if isinstance(index, slice):
            # Slice the shared list directly: copying its prefix first would make `events[after:]`
            # (what every store append reads) cost O(thread length).
            start, stop, step = index.indices(self._size)
            if step == 1:
                return tuple(self._items[start:stop])
            return tuple(self._items[i] for i in range(start, stop, step))
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("event index out of range")
        return self._items[index]

    # Both iterate in C: a generator, or `Sequence`'s own `__reversed__` (a `__getitem__` call an
    # event), cost more than the renderer's work per event.
    def __iter__(self) -> Iterator[Event]:
        return islice(self._items, self._size)

    def __reversed__(self) -> Iterator[Event]:
        return map(self._items.__getitem__, range(self._size - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventLog | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))  # pyright: ignore[reportUnknownArgumentType]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"EventLog({list(self)!r})"


def shared_items(thread: Thread) -> tuple[list[Event], int]:
    """The list a thread's events live in, and how many of them are the thread's (not public API).

    Threads that extend one another share the list, which only ever grows: its first `size` items
    never change. A renderer that remembers how far it read a list can go on from there for any
    later thread on the same list (`context.Context` does, so a step does not re-read the thread).
    """
    return thread._items, thread._size  # pyright: ignore[reportPrivateUsage]


class Thread:
    """An append-only list of typed events, and everything derived from them.

    A `Thread` is immutable: `append` returns a new thread that shares storage with this one,
    so appending is amortised O(1) however long the thread is.

    Example:
        ```python
        from threadloom import Event, Thread

        thread = Thread.start("user_input", {"text": "deploy the backend"}, channel="#deploys")
        thread = thread.append(Event("tool_call", {"intent": "list_git_tags", "arguments": {}, "policy": "auto"}))
        assert thread.status == "ready" and len(thread.events) == 2
        assert Thread.from_json(thread.to_json()) == thread
        ```
    """

    __slots__ = ("_items", "_metadata", "_size", "_state", "id")

    id: str
    _items: list[Event]
    _size: int
    _metadata: Mapping[str, JsonValue]
    _state: ThreadState

    def __init__(
        self,
        events: Iterable[Event] = (),
        *,
        thread_id: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> None:
        """Build a thread from events (its state is folded from them).

        Args:
            events: The events, oldest first.
            thread_id: The thread's id; a fresh one when omitted.
            metadata: JSON facts about the thread that are not events (agent name, channel, ...).

        Raises:
            UserError: An item is not an `Event`, event ids repeat, or metadata is not JSON.
        """
        items = list(events)
        # Both checks run in C over the whole list (a store's load builds threads of thousands of
        # events); the loop that names the first offending item runs only when one fails.
        if not all(map(isinstance, items, repeat(Event))) or len(set(map(_event_id, items))) != len(items):
            refuse_events(items)
        if thread_id and (problem := id_problem(thread_id, "thread id")):
            raise UserError(problem)
        if metadata is not None and not isinstance(metadata, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError(f"thread metadata must be a mapping of JSON values, got {type(metadata).__name__}")
        meta = dict(metadata or {})
        if problem := json_problem(meta, "metadata", 0):
            raise UserError(f"thread {problem}")
        self._init(thread_id or new_id("th"), items, len(items), MappingProxyType(meta), fold(ThreadState(), items))

    def _init(
        self, thread_id: str, items: list[Event], size: int, metadata: Mapping[str, JsonValue], state: ThreadState
    ) -> None:
        _SET_THREAD_ID(self, thread_id)
        _SET_ITEMS(self, items)
        _SET_SIZE(self, size)
        _SET_METADATA(self, metadata)
        _SET_THREAD_STATE(self, state)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Thread is immutable; use append() to get a new thread (tried to set {name!r})")

    @classmethod
    def start(cls, type: str, data: JsonValue = None, /, **metadata: JsonValue) -> Thread:
        """Start a thread with its first event, e.g. the user's message or a webhook's payload.

        Args:
            type: The first event's type, such as `user_input` or `slack_message`.
            data: The first event's payload.
            **metadata: JSON facts about the thread (channel, customer, ...).

        Returns:
            A new thread with one event.
        """
        return cls((Event(type, data),), metadata=metadata)

    # -- reading ---------------------------------------------------------------------------

    @property
    def events(self) -> EventLog:
        """The events, oldest first, as an immutable tuple-like view."""
        return EventLog(self._items, self._size)

    @property
    def metadata(self) -> Mapping[str, JsonValue]:
        """JSON facts about the thread that are not events (read-only)."""
        return self._metadata

    @property
    def state(self) -> ThreadState:
        """The derived state: status, pending call, error counts, steps (see `threadloom.state`)."""
        return self._state

    @property
    def status(self) -> Status:
        """`ready`, `waiting_approval`, `waiting_human`, `sleeping`, `done` or `failed`."""
        return self._state.status

    @property
    def pending(self) -> Event | None:
        """The event waiting for a person (an approval tool's call or a human request), else None."""
        return self._state.pending

    @property
    def waiting_reason(self) -> str | None:
        """Why the thread waits for a person, in one line, or None."""
        return self._state.waiting_reason

    @property
    def consecutive_errors(self) -> Mapping[str, int]:
        """Per tool, the failures since its last success."""
        return self._state.consecutive_errors

    @property
    def usage(self) -> Usage:
        """Tokens every model call in this thread used, in total (from the events' `model` records)."""
        total = Usage(requests=0)
        for usage in self._state.usage.values():
            total += usage
        return total

    @property
    def usage_by_model(self) -> Mapping[str, Usage]:
        """Tokens used per model name; what `threadloom.models.cost` prices."""
        return self._state.usage

    @property
    def last(self) -> Event | None:
        """The newest event, or None for an empty thread."""
        return self._items[self._size - 1] if self._size else None

    def find(self, event_id: str) -> Event | None:
        """The event with this id, or None (a linear scan from the newest)."""
        for i in range(self._size - 1, -1, -1):
            if self._items[i].id == event_id:
                return self._items[i]
        return None

    # -- growing ---------------------------------------------------------------------------

    def append(self, event: Event) -> Thread:
        """A new thread with `event` after this one's events; this thread is unchanged.

        Args:
            event: The event to add.

        Returns:
            The longer thread.

        Raises:
            UserError: `event` is not an `Event`.
        """
        if not isinstance(event, Event):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError(f"append() takes an Event, got {type(event).__name__}; wrap it: Event(type, data)")
        items = self._items
        if len(items) != self._size:
            # Another thread already extended this one's list; branch off with a copy.
            items = items[: self._size]
        items.append(event)
        new = object.__new__(Thread)
        new._init(self.id, items, self._size + 1, self._metadata, fold(self._state, (event,)))
        return new

    def extend(self, events: Iterable[Event]) -> Thread:
        """A new thread with all of `events` appended in order."""
        thread = self
        for event in events:
            thread = thread.append(event)
        return thread

    def fork(self, at: str, *, thread_id: str | None = None) -> Thread:
        """A new thread whose events are this one's up to and including event `at`.

        Args:
            at: The id of the last event to keep.
            thread_id: The fork's id; a fresh one when omitted.

        Returns:
            The fork; its metadata records `forked_from` (this thread's id) and `forked_at`.

        Raises:
            UserError: No event in this thread has id `at`, or the fork would run a call on an
                approval given in this thread (fork at the call itself to decide on it again).
        """
        for i in range(self._size):
            if self._items[i].id == at:
                metadata = {**self._metadata, "forked_from": self.id, "forked_at": at}
                fork = Thread(self._items[: i + 1], thread_id=thread_id, metadata=metadata)
                check_fork(fork.state, self.id, at)
                return fork
        raise UserError(f"cannot fork thread {self.id!r} at {at!r}: no event has that id")

    # -- people ----------------------------------------------------------------------------

    def approve(self, call_id: str, edits: Mapping[str, JsonValue] | None = None, *, by: str | None = None) -> Thread:
        """Approve the pending tool call `call_id`, optionally with edited arguments.

        Args:
            call_id: The id of the pending `tool_call` event (`thread.pending.id`).
            edits: Arguments to replace before the call runs.
            by: Who decided (an API key's name, `answer_link`), kept in the event, never shown to the model.

        Returns:
            The thread with an `approval` event; running it executes the call once.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
            UserError: An edit names a key that is not one of the call's arguments (the message
                lists them); nothing is appended.
        """
        call = check_pending(self._state, self.id, call_id, "waiting_approval", "approve")
        check_edits(call, edits or {})
        data: dict[str, JsonValue] = {"call_id": call_id, "approved": True, "edits": dict(edits or {})}
        return self.append(Event(APPROVAL, decided(data, by)))

    def reject(self, call_id: str, feedback: str, *, by: str | None = None) -> Thread:
        """Reject the pending tool call `call_id`; the feedback goes to the model.

        Args:
            call_id: The id of the pending `tool_call` event.
            feedback: Why, in words the model will read.
            by: Who decided, kept in the event (see `approve`).

        Returns:
            The thread with an `approval` event that says no.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
        """
        check_pending(self._state, self.id, call_id, "waiting_approval", "reject")
        return self.append(Event(APPROVAL, decided({"call_id": call_id, "approved": False, "feedback": feedback}, by)))

    def respond(self, request_id: str, text: str, *, by: str | None = None) -> Thread:
        """Answer the pending human request `request_id`.

        Args:
            request_id: The id of the pending `request_human_input` / `request_more_information` event.
            text: The person's answer.
            by: Who answered, kept in the event (see `approve`).

        Returns:
            The thread with a `human_response` event; it is `ready` again.

        Raises:
            InvalidTransition: `request_id` is not the request waiting for an answer.
            UserError: The request is `multiple_choice` and `text` is none of its `choices` (the
                message lists them); nothing is appended.
        """
        check_choice(check_pending(self._state, self.id, request_id, "waiting_human", "respond to"), text)
        return self.append(Event(HUMAN_RESPONSE, decided({"request_id": request_id, "text": text}, by)))

    # -- JSON ------------------------------------------------------------------------------

    def to_json(self, *, indent: int | None = None) -> str:
        """The thread as JSON: `{"id", "metadata", "events": [{"id", "type", "data", "at"}]}`."""
        return dump_thread(self.id, self._metadata, self.events, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Thread:
        """Rebuild a thread from `to_json()` output; its state is derived again from the events.

        Raises:
            ThreadDecodeError: The text is not JSON, or not a thread's shape; the message says where.
        """
        thread_id, metadata, events = load_thread(text)
        try:
            return cls(events, thread_id=thread_id, metadata=metadata)
        except UserError as exc:
            raise ThreadDecodeError(f"not a threadloom thread: {exc}") from exc

    # -- comparison ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Thread):
            return NotImplemented
        return self.id == other.id and self._metadata == other._metadata and self.events == other.events

    def __hash__(self) -> int:
        return hash((self.id, self._size, self.last))

    def __repr__(self) -> str:
        return f"Thread(id={self.id!r}, status={self.status!r}, events={self._size})"

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> dict[str, Any]:
        return {"json": self.to_json()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        other = Thread.from_json(state["json"])
        self._init(other.id, other._items, other._size, other._metadata, other._state)


# Thread's slots set directly: `Thread.__setattr__` refuses every assignment, and
# `object.__setattr__` looks the slot up by name on every call.
_SET_THREAD_ID: Final = Thread.__dict__["id"].__set__
_SET_ITEMS: Final = Thread.__dict__["_items"].__set__
_SET_SIZE: Final = Thread.__dict__["_size"].__set__
_SET_METADATA: Final = Thread.__dict__["_metadata"].__set__
_SET_THREAD_STATE: Final = Thread.__dict__["_state"].__set__
_event_id: Final = attrgetter("id")
