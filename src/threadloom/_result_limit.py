"""How long a tool's result may be as stored: the length of the JSON text a store writes for it.

A result goes into the thread whole, and every later request renders it again: one tool (or an MCP
server, which is third-party input) returning 20 MB of text makes every later model call fail or
cost a fortune. So a result over its tool's `max_result_chars` is not stored; the loop records an
error the model reads instead, and counts it as the tool's failure.
"""

from __future__ import annotations

import json
from typing import Final

from pydantic import JsonValue

from .exceptions import UserError

__all__ = ["DEFAULT_MAX_RESULT_CHARS", "check_limit", "oversize", "too_large"]

DEFAULT_MAX_RESULT_CHARS: Final = 100_000
"""About 25,000 tokens: a long page of text or a few hundred rows fit with room for the rest of the
context in any current model's window, while a dump that would crowd the thread out (a whole file,
a 20 MB page) is refused."""

# The store's encoding (store/_codec.py), so the length is the stored one; NaN is let through to be
# measured (the event refuses it afterwards, naming it), and the loop's JSON values hold no cycles.
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def oversize(result: JsonValue, limit: int | None) -> int | None:
    """The length of `result`'s stored JSON text when it is over `limit`, else None (always, for no limit).

    The loop holds the result as JSON values, not text (the store writes the text), so a string,
    the common large result, is first bounded by its length: its text is its characters, two quotes,
    and at most six characters for each escaped one. Only a string that could be over, or another
    value, is encoded, in C, which costs less than the walk the event's own check makes over it.
    """
    if limit is None or (isinstance(result, str) and 6 * len(result) + 2 <= limit):
        return None
    try:
        size = len(_ENCODE(result))
    except ValueError:  # an int too long to write as text: the event refuses it, saying why
        return None
    return size if size > limit else None


def too_large(tool_name: str, result: JsonValue, limit: int | None) -> str | None:
    """The error the model reads when `result` is over `limit` (what to do instead), else None.

    The tool has run: the message says so, lest a call that changed something be made again.
    """
    size = oversize(result, limit)
    if size is None:
        return None
    return (
        f"`{tool_name}` ran, but its result is {size:,} characters, over its limit of {limit:,}, and was not kept: "
        "do not run it again for the same; ask for less (a page, a summary) if it only reads "
        "(its developer can raise max_result_chars)"
    )


def check_limit(owner: str, limit: object) -> None:
    """Refuse a `max_result_chars` that is neither a positive int nor None, naming its `owner` (`tool 'fetch'`).

    Raises:
        UserError: It is not.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise UserError(
            f"{owner}: max_result_chars must be a positive number of characters or None (no limit), got {limit!r}"
        )
