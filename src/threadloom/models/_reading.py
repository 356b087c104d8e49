"""Reading a provider's answer: what the SDK let through unchecked is the provider's fault, not ours.

The SDKs build their response objects without validating them, so a compatible server's odd body
reaches us as None where an object belongs or a number where text does.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import TypeVar

from ..exceptions import ProviderError

__all__ = ["reading", "typed"]

_T = TypeVar("_T")
_MAX_BODY = 2_000  # characters of a malformed answer kept in the error


@contextmanager
def reading(model: str, response: object) -> Generator[None]:
    """Read `response` in this block: an `AttributeError` or `TypeError` in it becomes a `ProviderError`.

    Raises:
        ProviderError: With status 200 and the answer (its text, or its repr) as the body.
    """
    try:
        yield
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        body = response if isinstance(response, str) else repr(response)[:_MAX_BODY]
        raise ProviderError(f"{model}: a malformed response: {exc}", status_code=200, body=body, model=model) from exc


def typed(value: object, kind: type[_T]) -> _T:
    """`value` if it is a `kind` (a bool is no int), else a `TypeError` for `reading` to report."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}: {value!r:.80}")
    return value
