"""Reading a provider's answer: what the SDK let through unchecked is the provider's fault, not ours.

The SDKs build their response objects without validating them, so a compatible server's odd body
reaches us as None where an object belongs or a number where text does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..exceptions import ProviderError
from ._secrets import hide_keys, redacted_cause

__all__ = ["read", "typed"]

_R = TypeVar("_R")
_T = TypeVar("_T")
_MAX_BODY = 2_000  # characters of a malformed answer kept in the error


def read(model: str, response: _R, api_key: str | None, answer: Callable[[_R], _T]) -> _T:
    """`answer(response)`: an `AttributeError`, `TypeError`, `KeyError` or `IndexError` in it becomes a `ProviderError`.

    Raises:
        ProviderError: With status 200 and the answer (its text, or its repr) as the body, `api_key`
            (and key-like tokens) hidden in it and in the message.
    """
    try:
        return answer(response)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        # Hidden before the repr is cut, so no key is cut into a piece the patterns miss.
        body = hide_keys(response if isinstance(response, str) else repr(response), api_key)
        body = body if isinstance(response, str) else body[:_MAX_BODY]
        message = hide_keys(f"{model}: a malformed response: {exc}", api_key)
        failure = ProviderError(message, status_code=200, body=body, model=model)
        cause = redacted_cause(exc, api_key)
    # Raised outside the except block, so `exc` (whose text quotes the raw answer) is not the
    # traceback's context: a with block's exit could not drop it, hence a function.
    raise failure from cause


def typed(value: object, kind: type[_T]) -> _T:
    """`value` if it is a `kind` (a bool is no int), else a `TypeError` for `read` to report."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}: {value!r:.80}")
    return value
