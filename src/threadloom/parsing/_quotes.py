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
_INTERESTING = re.compile(r'["{}\[\]`]')
_MAX_TRIES = 64


def requote(text: str) -> str:
    """`text` with backtick and triple-quoted values turned into JSON strings (unchanged if none)."""
    if "`" not in text and '"""' not in text:
        return text
    out: list[str] = []
    i, depth, tries = 0, 0, 0
    while (match := _INTERESTING.search(text, i)) is not None:
        j = match.start()
        out.append(text[i:j])
        char = text[j]
        if char == '"' and not text.startswith('"""', j):
            end = _string_end(text, j)
            out.append(text[j:end])
            i = end
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth = max(depth - 1, 0)
        elif tries >= _MAX_TRIES:
            out.append(text[j:])  # no conversion is left to try: the rest stays as it is
            return "".join(out)
        elif depth:
            tries += 1  # each try may read ahead to the text's end: a bounded number of them
            found = _quoted_value(text, j) if _value_position(out) else None
            if found is not None:
                value, i = found
                out.append(json.dumps(value, ensure_ascii=False))
                continue
        out.append(char)
        i = j + 1
    out.append(text[i:])
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
    for _ in range(_MAX_TRIES):
        if at == -1 or _CLOSER_AHEAD.match(text, at + len(quote)):
            return at
        at = text.find(quote, at + 1)
    return -1


def _dedent(body: str) -> str:
    return textwrap.dedent(body.strip("\n")).rstrip()
