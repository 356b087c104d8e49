"""One linear pass over JSON-like text: where each bracket closes, how deep it nests, how it ends.

The scan knows strings (double quotes; single quotes unless a letter or digit comes before, as in
`don't`) and brackets, and jumps between them with a regex, so its work is bounded by the
text's length. Quotes outside any bracket are prose. At the end of the text it says whether
what was open was cut off (see `cut_reason`), which is what lets the parser refuse an answer
that stopped mid-way instead of completing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_DEPTH", "Scan", "TooDeep", "scan"]

MAX_DEPTH = 64
"""Deeper nesting is refused: no event can hold it, and repairing it costs time quadratic in depth."""

_OPENER = re.compile(r"[{\[]")
_NEXT = re.compile(r"[\"'{}\[\]]")
# Inside brackets: a whole string (closed, or open to the end) or one bracket.
# A single quote after a letter or digit is an apostrophe (`don't`), not a string.
_TOKEN = re.compile(
    r"\"[^\"\\]*(?:\\.[^\"\\]*)*(?P<d>\")?|(?<![^\W_])'[^'\\]*(?:\\.[^'\\]*)*(?P<s>')?|[{}\[\]]", re.DOTALL
)
_STRING = re.compile(r"\"[^\"\\]*(?:\\.[^\"\\]*)*\"|'[^'\\]*(?:\\.[^'\\]*)*'", re.DOTALL)
_PAIRS = {"{": "}", "[": "]"}
_LITERALS = {"true", "false", "null", "True", "False", "None"}


class TooDeep(Exception):
    """The text nests brackets deeper than `MAX_DEPTH`."""


@dataclass(frozen=True, slots=True)
class Scan:
    """Where a bracketed value ends and, if it runs to the end of the text unclosed, why it is cut."""

    end: int
    """The index just after the closing bracket, or the text's length."""
    cut: str | None
    """None when complete (or only closing braces of objects are missing); else what was cut."""


def scan(text: str, start: int, *, whole: bool = False) -> Scan:
    """Scan from the bracket at `start` to its match (`whole`: every value to the end of the text).

    Raises:
        TooDeep: The brackets nest deeper than `MAX_DEPTH`.
    """
    stack: list[str] = []
    malformed = False  # a closer that does not match its opener: broken, not cut
    # The last two tokens (start, end): enough to find the last `,` / `:` at the end, lazily.
    last, before = (-1, -1), (-1, -1)
    i, n = start, len(text)
    while (found := (_NEXT if stack else _OPENER).search(text, i)) is not None:
        match = _TOKEN.match(text, found.start())
        if match is None:
            i = found.end()  # an apostrophe
            continue
        j, i = match.span()
        char = text[j]
        if char in "\"'":
            if match.group("d") is None and match.group("s") is None:
                # A string that opens where none can (after a value) is an unescaped inner
                # quote: the text is broken, and repair may read it; only a string in its
                # place that never closes was cut.
                return Scan(n, "inside a string" if _starts_value(text, j) else None)
        elif char in "{[":
            stack.append(char)
            if len(stack) > MAX_DEPTH:
                raise TooDeep(f"brackets nested more than {MAX_DEPTH} deep")
        else:
            malformed |= _PAIRS[stack.pop()] != char
            if not stack and not whole:
                return Scan(i, None)
        last, before = (j, i), last
    if malformed or not stack:
        return Scan(n, None)
    return Scan(n, cut_reason(text, stack, _last_mark(text, last, before)))


def _last_mark(text: str, last: tuple[int, int], before: tuple[int, int]) -> int:
    """The index of the last structural character: a `,` / `:` after the last token, or the token."""
    mark = max(text.rfind(",", last[1]), text.rfind(":", last[1]))
    if mark != -1 or text[last[0]] not in "\"'":
        return mark if mark != -1 else last[0]
    mark = max(text.rfind(",", before[1], last[0]), text.rfind(":", before[1], last[0]))
    return mark if mark != -1 else before[0]


def _starts_value(text: str, at: int) -> bool:
    """Whether a string may start at `at`: after `{`, `[`, `:` or `,` (blanks between)."""
    k = at - 1
    while k >= 0 and text[k] in " \t\r\n":
        k -= 1
    return k < 0 or text[k] in "{[:,"


def cut_reason(text: str, stack: list[str], last: int) -> str | None:
    """Why a text that ends with `stack` still open is cut off, or None if only `}` are missing.

    Only objects may stay open, and only after a complete value: a closed string, a closed
    object or list, `true` / `false` / `null`, or a number or bare word with a space after it
    (with nothing after, it may have gone on: `"replicas": 1` could have been `10`).
    """
    if not stack:
        return None
    if "[" in stack:
        return "inside a list"
    mark = text[last]
    tail = text[last + 1 :]
    trimmed = tail.rstrip()
    value = trimmed.removesuffix("```").strip()  # a closing fence ends the value, nothing else
    spaced = tail != trimmed or trimmed.endswith("```")
    if mark in "{,":
        return "before a key" if not value else "inside a key"
    if mark == ":":
        if not value:
            return "before a value"
        if _STRING.fullmatch(value) or value in _LITERALS:
            return None
        if spaced and not any(c in value for c in "\"'"):
            return None
        return "inside a value"
    return None if not value else "after a value, with text that is not JSON"
