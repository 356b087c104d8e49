"""A small YAML emitter for JSON values: compact block style that any YAML 1.1/1.2 parser reads back.

The core may not depend on PyYAML, and rendering needs only the JSON subset, so strings are written
plain when that is unambiguous and JSON-quoted (a valid YAML double-quoted scalar) otherwise.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import cast

from pydantic import JsonValue

__all__ = ["dump_yaml"]

# Plain scalars that a YAML parser would read as something other than the same string.
_RESERVED = re.compile(
    r"^(?:~|null|true|false|yes|no|on|off|y|n|<<|[-+]?(?:\.inf|\.nan)|[-+]?0x[0-9a-f_]+|[-+]?[0-9][0-9_.:eExXoObB+-]*"
    r"|[-+]?\.[0-9].*|\d{4}-\d\d?-\d\d?(?:[Tt ].*)?|---.*|\.\.\..*)$",
    re.IGNORECASE,
)
_YAML_FORBIDDEN = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")
_MAX_IMPLICIT_KEY = 1000  # YAML caps implicit keys at 1024 characters; longer ones need `? key`
_UNSAFE_START = set("-?:,[]{}#&*!|>'\"%@`= \t")
_UNSAFE_INSIDE = (": ", " #", "\t")


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or text[0] in _UNSAFE_START or text.endswith(":"):
        return False
    if any(token in text for token in _UNSAFE_INSIDE) or _RESERVED.match(text):
        return False
    return text.isprintable()


def _scalar(value: JsonValue) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    text = cast(str, value)
    if len(text) <= _SHORT:
        return _short_string(text)
    return text if _plain_ok(text) else _quoted(text)


_SHORT = 64
"""Strings this short (names, ids, enum-like values) recur from event to event: their scalar is remembered."""


@functools.lru_cache(maxsize=4096)
def _short_string(text: str) -> str:
    return text if _plain_ok(text) else _quoted(text)


def _quoted(text: str) -> str:
    """A double-quoted scalar: JSON escaping, plus what YAML reads oddly raw (DEL, C1, line separators)."""
    return _YAML_FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


@functools.lru_cache(maxsize=4096)
def _cached_key(key: str) -> str:
    return key if _plain_ok(key) else _quoted(key)


def _key(key: str) -> str:
    """A mapping key as written; the same few keys recur in every event, so short ones are remembered."""
    return _cached_key(key) if len(key) <= _SHORT else (key if _plain_ok(key) else _quoted(key))


def _block_ok(text: str) -> bool:
    """A multi-line string that reads back exactly as a `|` literal block (with the right chomping)."""
    lines = text.split("\n")
    return (
        "\n" in text.rstrip("\n")
        and all(line.isprintable() and line == line.rstrip() for line in lines)
        and not text.startswith((" ", "\n"))
        # A final line break would need a line break after the block, which a bare dump does not end with.
        and not text.endswith("\n")
    )


def dump_yaml(value: JsonValue, indent: int = 0) -> str:
    """`value` as block-style YAML, every line indented by `indent` spaces, no trailing newline.

    Example:
        ```python
        from threadloom._yaml import dump_yaml

        assert dump_yaml({"from": "@alex", "tags": ["v1.2.3", "1.0"], "ok": True}).splitlines() == [
            'from: "@alex"',
            "tags:",
            "  - v1.2.3",
            '  - "1.0"',
            "ok: true",
        ]
        ```
    """
    return "\n".join(_lines(value, indent))


def _lines(value: JsonValue, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for key, item in value.items():
            written = _key(key)
            if len(written) > _MAX_IMPLICIT_KEY:
                out.append(f"{pad}? {written}")  # an explicit key: no length limit
                out.extend(_entry(pad + ":", item, indent))
            else:
                out.extend(_entry(pad + written + ":", item, indent))
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            if isinstance(item, dict) and item:
                nested = _lines(item, indent + 2)
                out.append(pad + "- " + nested[0][indent + 2 :])
                out.extend(nested[1:])
            else:
                out.extend(_entry(pad + "-", item, indent))
        return out
    if isinstance(value, str) and _block_ok(value):
        chomp = "" if value.endswith("\n") else "-"
        return [pad + "|" + chomp, *(pad + "  " + line if line else "" for line in value.rstrip("\n").split("\n"))]
    return [pad + _scalar(value)]


def _entry(head: str, item: JsonValue, indent: int) -> list[str]:
    """`head` (a `key:` or `-`) followed by `item`: inline when scalar, on the next lines when not."""
    if isinstance(item, dict | list) and item:
        return [head, *_lines(item, indent + 2)]
    if isinstance(item, str) and _block_ok(item):
        block = _lines(item, indent)
        return [head + " " + block[0].strip(), *block[1:]]
    if isinstance(item, dict):
        return [head + " {}"]
    if isinstance(item, list):
        return [head + " []"]
    return [head + " " + _scalar(item)]
