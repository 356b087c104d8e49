"""The rendering pipeline: a thread's events, read once each, to what the model may see of them.

For every event, in order: the resolver learns from it which errors a later success resolved; its
data loses the model's usage record, is redacted, and loses every secret known so far; and its
default rendering (text for xml and yaml, messages for `messages`) is made once. Events are
immutable and a thread's list only grows (`thread.shared_items`, which the caller hands in), so a
`Rendering` remembers how far it read a list and a step reads only the events added since: the
cost of a step does not grow with the thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal, cast

from pydantic import JsonValue

from ._redact import Redactor, scrub
from ._render_event import TextFormat, event_text
from ._render_messages import event_messages
from .events import MODEL_RECORD_EVENTS, Event, is_bookkeeping, restored_event
from .messages import Message

__all__ = ["Part", "Pipeline", "Rendering"]

Format = Literal["xml", "yaml", "messages"]
Part = str | tuple[Message, ...] | None
"""An event's default rendering: its text (xml, yaml), its messages (`messages`), or None when not shown."""

_MODEL_EVENTS = frozenset({"tool_call", "done_for_now", "request_human_input", "request_more_information"})
_FAILURE_EVENTS = frozenset({"approval", "error"})
_RESOLUTION_EVENTS = _MODEL_EVENTS | _FAILURE_EVENTS | {"tool_response"}
_RENDERINGS_LIMIT = 64  # a long-running worker renders many threads: keep memory bounded


class Pipeline:
    """How one context renders threads: its settings, its redactor, and the lists it has read."""

    __slots__ = ("_renderings", "format", "hide_resolved_errors", "parts", "redactor", "show_bookkeeping")

    def __init__(
        self,
        format: Format,
        redactor: Redactor | None,
        *,
        hide_resolved_errors: bool,
        show_bookkeeping: bool,
        parts: bool,
    ) -> None:
        self.format = format
        self.redactor = redactor
        self.hide_resolved_errors = hide_resolved_errors
        self.show_bookkeeping = show_bookkeeping
        self.parts = parts  # whether the default rendering is wanted (not with a whole-thread renderer)
        self._renderings: dict[int, Rendering] = {}

    def read(self, items: list[Event], size: int) -> Rendering:
        """The rendering of a thread (the first `size` events of `items`), read on from where it left the list."""
        # Most recently used last: a hit moves to the end, so eviction drops the longest unused.
        rendering = self._renderings.pop(id(items), None)
        if rendering is None or rendering.items is not items or rendering.done > size:
            # An older, shorter thread on the same list (`done > size`) is rendered afresh.
            if len(self._renderings) >= _RENDERINGS_LIMIT:
                del self._renderings[next(iter(self._renderings))]
            rendering = Rendering(items)
        self._renderings[id(items)] = rendering
        if rendering.done < size:
            self._read_on(rendering, size)
        return rendering

    def _read_on(self, rendering: Rendering, size: int) -> None:
        redactor, secrets = self.redactor, rendering.secrets
        resolver = rendering.resolver if self.hide_resolved_errors else None
        known = len(secrets)
        add_shown, add_part = rendering.shown.append, rendering.parts.append
        parts, show_bookkeeping = self.parts, self.show_bookkeeping
        text_format = None if self.format == "messages" else cast(TextFormat, self.format)
        left_out: dict[str, bool] = {}  # per type, whether its events are left out as bookkeeping
        for event in itertools.islice(rendering.items, rendering.done, size):
            type_, data = event.type, event.data
            if resolver is not None and type_ in resolver.watched:
                resolver.feed(event)
            if type(data) is dict:
                if "model" in data and type_ in MODEL_RECORD_EVENTS:
                    data = {k: v for k, v in data.items() if k != "model"}  # the call's usage: bookkeeping
                if redactor is not None:
                    data = redactor.redact_mapping(data, secrets)
            elif redactor is not None:
                data = redactor.redact(data, secrets)
            if secrets:
                data = scrub(data, secrets)
            shown = event if data is event.data else restored_event(type_, data, event.id, event.at)
            add_shown(shown)
            # `part`, inlined: a cold render (a resumed thread of thousands of events) pays it per event.
            if (hide := left_out.get(type_)) is None:
                hide = left_out[type_] = not parts or (not show_bookkeeping and is_bookkeeping(type_))
            if hide:
                add_part(None)
            elif text_format is None:
                add_part(event_messages(shown))
            elif type_ == "tool_call" and type(data) is dict and data.get("prefetch"):
                add_part(None)
            else:
                add_part(event_text(type_, data, text_format))
        rendering.done = size
        if len(secrets) > known:
            self._scrub_again(rendering)  # a secret first seen now may be quoted in an earlier event

    def _scrub_again(self, rendering: Rendering) -> None:
        for i, shown in enumerate(rendering.shown):
            data = scrub(shown.data, rendering.secrets)
            if data is not shown.data:
                rendering.shown[i] = restored_event(shown.type, data, shown.id, shown.at)
                rendering.parts[i] = self.part(rendering.shown[i]) if self.parts else None
        rendering.stale = True

    def part(self, event: Event) -> Part:
        """The default rendering of an already redacted event, or None when it is left out."""
        if not self.show_bookkeeping and is_bookkeeping(event.type):
            return None
        if self.format == "messages":
            return event_messages(event)
        if event.type == "tool_call" and isinstance(event.data, dict) and event.data.get("prefetch"):
            return None  # code made this call, not the model: its `<name_result>` says all (factor 13)
        return event_text(event.type, event.data, cast(TextFormat, self.format))

    def text(self, rendering: Rendering) -> str:
        """The default xml or yaml rendering: every shown event's text, joined, extended where it can be."""
        sep = "\n\n" if self.format == "xml" else "\n"
        hidden = rendering.resolver.hidden
        if rendering.stale or len(hidden) != rendering.hidden_seen:  # errors were resolved: drop them
            rendering.text = sep.join(p for _, p in rendering.visible() if isinstance(p, str))
        elif rendering.joined < rendering.done:
            parts = rendering.parts[rendering.joined :]
            if hidden:
                shown = rendering.shown[rendering.joined :]
                added = [p for e, p in zip(shown, parts, strict=True) if isinstance(p, str) and e.id not in hidden]
            else:  # no error is hidden: every part that is text
                added = [p for p in parts if isinstance(p, str)]
            if added:
                # Extend the text rather than join every part again. Held by this local alone,
                # CPython grows the string in place.
                whole = rendering.text
                rendering.text = ""
                if whole:
                    whole += sep
                whole += sep.join(added)
                rendering.text = whole
        rendering.mark_current()
        return rendering.text

    def messages(self, rendering: Rendering) -> list[Message]:
        """The default `messages` rendering: every shown event's messages, in order."""
        hidden = rendering.resolver.hidden
        if rendering.stale or len(hidden) != rendering.hidden_seen:
            rendering.messages = [m for _, p in rendering.visible() if isinstance(p, tuple) for m in p]
        else:
            for e, p in zip(rendering.shown[rendering.joined :], rendering.parts[rendering.joined :], strict=True):
                if isinstance(p, tuple) and e.id not in hidden:
                    rendering.messages += p
        rendering.mark_current()
        return list(rendering.messages)


class Rendering:
    """How far a pipeline has read one shared event list, and what it made of each event."""

    __slots__ = (
        "done",
        "hidden_seen",
        "items",
        "joined",
        "messages",
        "parts",
        "resolver",
        "secrets",
        "shown",
        "stale",
        "text",
    )

    def __init__(self, items: list[Event]) -> None:
        self.items = items
        self.done = 0  # events of `items` read so far
        self.resolver = Resolver()
        self.secrets: set[str] = set()  # secret strings found so far, redacted wherever they appear
        self.shown: list[Event] = []  # per event read: what the model may see of it (redacted)
        self.parts: list[Part] = []  # per event read: its default rendering
        self.joined = 0  # how many parts `text` or `messages` hold
        self.hidden_seen = 0  # the size of `resolver.hidden` that `text` and `messages` reflect
        self.stale = False  # a part before `joined` changed: join again
        self.text = ""
        self.messages: list[Message] = []

    def visible(self) -> Iterator[tuple[Event, Part]]:
        """Each event read that is not hidden (as a resolved error), with its part."""
        hidden = self.resolver.hidden
        return ((e, p) for e, p in zip(self.shown, self.parts, strict=True) if e.id not in hidden)

    def visible_events(self) -> list[Event]:
        """What a whole-thread renderer gets of the events: redacted, resolved errors out."""
        return [event for event, _ in self.visible()]

    def mark_current(self) -> None:
        self.joined = self.done
        self.hidden_seen = len(self.resolver.hidden)
        self.stale = False


class Resolver:
    """Ids of errors a later success resolved, and of the failed calls (and their approvals), as a left fold.

    `hidden` only ever grows: an error, once resolved, stays resolved. `watched` names the event
    types that can change what it knows now (a success resolves only while a failure waits), so that
    the many calls and results of a long thread where nothing failed need not be fed at all.
    """

    __slots__ = ("approvals", "hidden", "model_failures", "tool_failures", "watched")

    def __init__(self) -> None:
        self.hidden: set[str] = set()
        self.tool_failures: dict[str, list[str]] = {}
        self.model_failures: list[str] = []
        self.approvals: dict[str, str] = {}  # call id -> the approval event's id
        self.watched: frozenset[str] = _FAILURE_EVENTS

    def feed(self, event: Event) -> None:
        data: dict[str, JsonValue] = event.data if isinstance(event.data, dict) else {}
        type_ = event.type
        call_id = data.get("call_id")
        if type_ == "tool_response":
            if self.tool_failures:
                self.hidden.update(self.tool_failures.pop(str(data.get("intent")), []))
        elif type_ in _MODEL_EVENTS:
            if self.model_failures and not data.get("prefetch"):
                self.hidden.update(self.model_failures)
                self.model_failures.clear()
        elif type_ == "approval":
            if isinstance(call_id, str):
                self.approvals[call_id] = event.id
        elif type_ != "error":
            return
        elif data.get("source") == "model":  # an error the model made
            self.model_failures.append(event.id)
        else:  # an error a tool raised
            ids = self.tool_failures.setdefault(str(data.get("intent")), [])
            ids.append(event.id)
            if isinstance(call_id, str):
                ids += [call_id, *([self.approvals[call_id]] if call_id in self.approvals else [])]
        self.watched = _RESOLUTION_EVENTS if self.tool_failures or self.model_failures else _FAILURE_EVENTS
