"""Keeping API keys out of the errors a provider's answer becomes.

Providers quote the key they were sent ("Incorrect API key provided: sk-..."); the error's message
and body go into the thread's `error` event and from there into the next prompt. Its traceback
goes into logs and error reporters, so the SDK's exception (which quotes the key too, and holds
the request with its Authorization header) is chained only as a `RedactedCause`.
"""

from __future__ import annotations

import re
from typing import TypeVar, cast

from .._redact import MIN_KNOWN_SECRET, REDACTED

__all__ = ["RedactedCause", "hide_keys", "redacted_cause"]

_T = TypeVar("_T")
# `sk-...` style keys (OpenAI's, Anthropic's `sk-ant-...`, OpenRouter's) and bearer tokens, whoever's they are.
_KEY_LIKE = r"\bsk-[A-Za-z0-9_*.-]{8,}|(?<=[Bb]earer )[A-Za-z0-9._~+/=*-]{8,}"


def hide_keys(value: _T, api_key: str | None) -> _T:
    """`value` (a message, or an error body at any depth) with `api_key` and key-like tokens as `[REDACTED]`."""
    known = [re.escape(api_key)] if api_key and len(api_key) >= MIN_KNOWN_SECRET else []
    return cast(_T, _hide(value, re.compile("|".join([*known, _KEY_LIKE]))))


class RedactedCause(Exception):
    """What the SDK raised, in a traceback: its type's name and its message with keys hidden, nothing else."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)
        self.kind = kind
        """The SDK exception's type, e.g. `openai.AuthenticationError`."""
        self.message = message
        """Its message, keys as `[REDACTED]`."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def redacted_cause(exc: BaseException, api_key: str | None) -> RedactedCause:
    """A stand-in for `exc` to chain (`raise error from ...`) outside the `except` block, so `exc` is no `__context__`."""
    return RedactedCause(f"{type(exc).__module__}.{type(exc).__qualname__}", hide_keys(str(exc), api_key))


def _hide(value: object, pattern: re.Pattern[str]) -> object:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {key: _hide(item, pattern) for key, item in cast(dict[object, object], value).items()}
    if isinstance(value, list):
        return [_hide(item, pattern) for item in cast(list[object], value)]
    return value
