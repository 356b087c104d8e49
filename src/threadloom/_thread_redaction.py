"""A thread's secrets, hidden alike wherever the thread is shown outside the model's context.

The API, the stream, webhook bodies and the pages (server), and an eval case file or report
(evals) show event data as the thread's agent redacts its model's context: by its key pattern and
secret keys, with every secret string found anywhere in the thread hidden wherever else it appears.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

from pydantic import JsonValue

from ._redact import REDACTED, Redactor, redact_with
from .events import Event
from .exceptions import UserError
from .state import model_record
from .thread import Thread

__all__ = ["ThreadRedaction"]


@dataclass(frozen=True, slots=True)
class ThreadRedaction:
    """How one agent's context redacts: its key pattern and secret keys, with the secrets found so far."""

    pattern: Any
    """The compiled pattern, or None."""
    keys: frozenset[str]
    """Keys always secret (the tools' secret fields)."""
    secrets: frozenset[str] = frozenset()
    """The secret strings found anywhere in the thread: hidden wherever else they appear, as the context does."""
    _redactor: Redactor = field(init=False, repr=False, compare=False)
    """Built once (it remembers its verdict on each key) and shared by the redactions `seeing` grows into."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_redactor", Redactor(self.pattern, self.keys))  # frozen: set once, here

    @classmethod
    def found_in(cls, events: Iterable[Event], pattern: re.Pattern[str] | None, keys: Collection[str] = ()) -> Self:
        """The redaction by `pattern` and `keys`, with the secrets of `events`."""
        return cls(pattern, frozenset(keys)).seeing(events)

    def seeing(self, events: Iterable[Event]) -> Self:
        """This redaction, also hiding the secret strings `events` hold (for a view that grows event by event)."""
        if self.pattern is None and not self.keys:
            return self
        found = set(self.secrets)
        for event in events:
            self._redactor.redact(event.data, found)
        if len(found) == len(self.secrets):
            return self
        grown = replace(self, secrets=frozenset(found))
        object.__setattr__(grown, "_redactor", self._redactor)  # the same pattern and keys
        return grown

    def apply(self, value: JsonValue) -> JsonValue:
        """`value` with its secrets replaced by `[REDACTED]`."""
        if self.pattern is None and not self.keys:
            return value
        return redact_with(self._redactor, value, secrets=self.secrets)

    def hides(self, key: str, value: JsonValue) -> bool:
        """Whether `value`, under `key`, would show redacted (a secret key, or a secret within it)."""
        return self.apply({key: value}) != {key: value}

    def kept(self, arguments: Mapping[str, JsonValue], edits: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        """`edits` to a call's `arguments`, with each hidden value sent back as shown given its own.

        A client that approves "with the arguments as read" sends `[REDACTED]` (or the redacted
        value, `postgresql://ada:[REDACTED]@db`) back, at the top or inside an object it edited:
        there the argument keeps its value, never the mask; any other value replaces it. An edit
        that comes to the argument as it was is left out.
        """
        out: dict[str, JsonValue] = {}
        for key, sent in edits.items():
            value = self._restored(key, arguments[key], sent) if key in arguments else sent
            if key not in arguments or value != arguments[key]:
                out[key] = value
        return out

    def _restored(self, key: str, stored: JsonValue, sent: JsonValue) -> JsonValue:
        """`sent` for `stored` (under `key`), where what a view showed of a hidden part is that part's value."""
        shown = self.apply({key: stored})
        if shown == {key: stored}:  # nothing hidden here: as sent
            return sent
        if sent == REDACTED or shown == {key: sent}:
            return stored
        if isinstance(stored, dict) and isinstance(sent, dict):
            return {k: self._restored(k, stored[k], v) if k in stored else v for k, v in sent.items()}
        if isinstance(stored, list) and _holds_mask(sent):
            # By position, a hidden value would follow whatever item now stands there (items reordered,
            # one added or taken out): the secret would go with another item, or the mask to the tool.
            raise UserError(
                f"edits: {key!r} is a list that holds a hidden value, changed and sent back with "
                f"{REDACTED}; send it as it was read, or whole with every value"
            )
        return sent

    def event_data(self, event: Event) -> JsonValue:
        """The event's data redacted, its model record (`data.model`) kept as it is.

        The record is threadloom's own bookkeeping, token counts and not secrets, though its
        `*_tokens` keys look like secrets to the pattern (as `threads show` keeps it too).
        """
        record = model_record(event)
        if record is None or not isinstance(event.data, dict):
            return self.apply(event.data)
        shown = self.apply({k: v for k, v in event.data.items() if k != "model"})
        return {**shown, "model": dict(record)} if isinstance(shown, dict) else shown

    def thread(self, thread: Thread) -> Thread:
        """`thread` with every event's data and its metadata redacted; ids and times kept."""
        events = [Event(e.type, self.event_data(e), id=e.id, at=e.at) for e in thread.events]
        metadata = self.apply(dict(thread.metadata))
        return Thread(events, thread_id=thread.id, metadata=metadata if isinstance(metadata, dict) else {})


def _holds_mask(value: JsonValue) -> bool:
    """Whether `value` shows `[REDACTED]` anywhere (as a view writes a hidden value or part of one)."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, dict):
        return any(_holds_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_mask(v) for v in value)
    return False
