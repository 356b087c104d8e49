"""What every view of a thread hides: the API's reads, its stream, webhook bodies and the pages redact alike.

Threads hold tool arguments and outside payloads, and a key that may only read (or a webhook
receiver) must not learn a tool's `SecretStr` argument or an `api_token` from them: each view shows
event data redacted as the thread's agent redacts its model's context (`ThreadRedaction`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

from .._thread_redaction import ThreadRedaction
from ..context import DEFAULT_SECRET_PATTERN
from ..runtime import Runtime
from ..thread import Thread

__all__ = ["Redaction"]


@dataclass(frozen=True, slots=True)
class Redaction(ThreadRedaction):
    """A `ThreadRedaction` by the thread's agent (the default pattern for unknown agents)."""

    @classmethod
    def of(cls, runtime: Runtime, thread: Thread) -> Redaction:
        """The redaction of the thread's agent, as its rendered context applies it, with the thread's secrets."""
        agent = runtime.agents.get(str(thread.metadata.get("agent")))
        # A context compiles a pattern given as text in its __post_init__: here it is always compiled.
        pattern = DEFAULT_SECRET_PATTERN if agent is None else cast(re.Pattern[str] | None, agent.context.redact)
        keys = frozenset[str]() if agent is None else frozenset(agent.context.secret_keys)
        return cls.found_in(thread.events, pattern, keys)
