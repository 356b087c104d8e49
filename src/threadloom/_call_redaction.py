"""What the loop records about a failed or stranded call, with the call's secrets kept out.

An error event and an `outcome_unknown` question are free text, where no renderer can tell a secret
by its key any more, and every reader of the thread (the store, a log, a span) sees them: so the
secrets are scrubbed where the loop writes that text, as the agent's context would hide them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from ._redact import DEFAULT_SECRET_PATTERN, Redactor, redact
from .events import json_problem
from .intents import Tool

__all__ = ["CallRedaction"]


@dataclass(frozen=True, slots=True)
class CallRedaction:
    """The default secret pattern and the agent's own, with the keys its context holds secret."""

    patterns: tuple[re.Pattern[str], ...]
    """Keys matching any of these are secret: always `DEFAULT_SECRET_PATTERN`, then the agent's."""
    keys: frozenset[str]
    """Exact keys always secret (the context's `secret_keys`)."""

    @classmethod
    def of(cls, pattern: re.Pattern[str] | None = None, keys: Collection[str] = ()) -> CallRedaction:
        """Redaction by the default pattern, `pattern` (the agent's context's, if any) and `keys`."""
        # The default stays even under a custom pattern or `redact=None`: the loop scrubbed by it
        # before it knew the agent's, and a stored error is no place to loosen that.
        extra = () if pattern is None or pattern is DEFAULT_SECRET_PATTERN else (pattern,)
        return cls((DEFAULT_SECRET_PATTERN, *extra), frozenset(keys))

    def value(self, value: JsonValue, tool: Tool, secrets: set[str]) -> JsonValue:
        """`value` with the secrets of a call to `tool` redacted; each secret string found goes into `secrets`."""
        keys = self.keys | tool.secret_fields
        for pattern in self.patterns:
            value = Redactor(pattern, keys).redact(value, secrets)
        return redact(value, None, secrets=secrets) if secrets else value

    def arguments(self, arguments: Mapping[str, JsonValue], tool: Tool) -> JsonValue:
        """A call's arguments, redacted."""
        return self.value(dict(arguments), tool, set())

    def secrets(self, arguments: Mapping[str, JsonValue], tool: Tool) -> set[str]:
        """A call's secret argument strings (by key or `SecretStr` field), which an error message may quote."""
        secrets: set[str] = set()
        self.value(dict(arguments), tool, secrets)
        return secrets

    def not_json(self, error: Exception, secrets: set[str]) -> str:
        """Why a result cannot be turned into JSON; pydantic's text may quote a serializer's error, and so a secret."""
        return str(redact(f"the result cannot be turned into JSON: {error}", DEFAULT_SECRET_PATTERN, secrets=secrets))

    def not_storable(self, result: JsonValue, tool: Tool, secrets: set[str]) -> str:
        """Why no store can hold `result`, quoting only its redacted form (the raw problem quotes the text's head)."""
        problem = json_problem(self.value(result, tool, secrets), "result", 1)
        if problem is None:  # only a secret held what no store can: say so without quoting it
            problem = "a secret value in it is no JSON a store can hold"
        return f"the result cannot be stored: {problem}"
