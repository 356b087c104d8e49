"""Rewrite the string quotes JSON lacks (backticks, triple quotes, fenced code) as JSON strings.

Models write code values the way Markdown and Python taught them: a fenced block, a Python
triple-quoted string or a backtick string after `"code":`. Inside an object or a list, in a value's
place, such a string becomes one JSON string (the fence's info line dropped, dedented), so the
usual repair can read the rest.
"""

from __future__ import annotations

import json
import re
import textwrap

__all__ = ["requote"]

_CLOSER_AHEAD = re.compile(r"[ \t]*(?:[,}\]\n]|$)")


def requote(text: str) -> str:
    """`text` with backtick and triple-quoted values turned into JSON strings (unchanged if none)."""
    if "`" not in text and '"""' not in text:
        return text
    out: list[str] = []
    i, depth, n = 0, 0, len(text)
    while i < n:
        char = text[i]
        if char == '"' and not text.startswith('"""', i):
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth = max(depth - 1, 0)
        if depth and char in '`"' and _value_position(out):
            found = _quoted_value(text, i)
            if found is not None:
                value, i = found
                out.append(json.dumps(value, ensure_ascii=False))
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)


def _value_position(out: list[str]) -> bool:
    """Whether the last non-blank character written so far starts a value (after `:`, `,` or `[`)."""
    for chunk in reversed(out):
        stripped = chunk.rstrip()
        if stripped:
            return stripped[-1] in ":,["
    return False


def _quoted_value(text: str, start: int) -> tuple[str, int] | None:
    """The string that starts at `start` with ``` / \"\"\" / `, and where reading resumes."""
    if text.startswith("```", start):
        body_start = text.find("\n", start)
        if body_start == -1:
            return None
        close = _find_closer(text, "```", body_start)
        if close == -1:
            return None
        return _dedent(text[body_start + 1 : close]), close + 3
    if text.startswith('"""', start):
        close = text.find('"""', start + 3)
        if close == -1:
            return None
        return _dedent(text[start + 3 : close]), close + 3
    close = _find_closer(text, "`", start + 1)
    if close == -1:
        return None
    return text[start + 1 : close], close + 1


def _find_closer(text: str, quote: str, start: int) -> int:
    """The first `quote` after `start` that a value's end follows (`,`, `}`, `]`, a newline, the end)."""
    at = text.find(quote, start)
    while at != -1:
        if _CLOSER_AHEAD.match(text, at + len(quote)):
            return at
        at = text.find(quote, at + 1)
    return -1


def _dedent(body: str) -> str:
    return textwrap.dedent(body.strip("\n")).rstrip()
