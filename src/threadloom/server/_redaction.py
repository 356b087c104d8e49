"""What every view of a thread hides: the API's reads, its stream, webhook bodies and the pages redact alike.

Threads hold tool arguments and outside payloads, and a key that may only read (or a webhook
receiver) must not learn a tool's `SecretStr` argument or an `api_token` from them: each view shows
event data redacted as the thread's agent redacts its model's context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic import JsonValue

from .._redact import Redactor
from ..context import DEFAULT_SECRET_PATTERN, redact
from ..events import Event
from ..runtime import Runtime
from ..state import model_record
from ..thread import Thread

__all__ = ["Redaction"]


@dataclass(frozen=True, slots=True)
class Redaction:
    """How one agent's context redacts: its key pattern and secret keys (the default pattern for unknown agents)."""

    pattern: Any
    """The compiled pattern, or None."""
    keys: frozenset[str]
    """Keys always secret (the tools' secret fields)."""
    secrets: frozenset[str] = frozenset()
    """The secret strings found anywhere in the thread: hidden wherever else they appear, as the context does."""

    @classmethod
    def of(cls, runtime: Runtime, thread: Thread) -> Redaction:
        """The redaction of the thread's agent, as its rendered context applies it, with the thread's secrets."""
        agent = runtime.agents.get(str(thread.metadata.get("agent")))
        # A context compiles a pattern given as text in its __post_init__: here it is always compiled.
        pattern = DEFAULT_SECRET_PATTERN if agent is None else cast(re.Pattern[str] | None, agent.context.redact)
        keys = frozenset[str]() if agent is None else frozenset(agent.context.secret_keys)
        return cls(pattern, keys).seeing(thread.events)

    def seeing(self, events: Iterable[Event]) -> Redaction:
        """This redaction, also hiding the secret strings `events` hold (for a view that grows event by event)."""
        if self.pattern is None and not self.keys:
            return self
        found = set(self.secrets)
        redactor = Redactor(self.pattern, self.keys)
        for event in events:
            redactor.redact(event.data, found)
        return self if len(found) == len(self.secrets) else replace(self, secrets=frozenset(found))

    def apply(self, value: JsonValue) -> JsonValue:
        """`value` with its secrets replaced by `[REDACTED]`."""
        if self.pattern is None and not self.keys:
            return value
        return redact(value, self.pattern, self.keys, secrets=self.secrets)

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
