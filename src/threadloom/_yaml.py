"""A small YAML emitter for JSON values: compact block style that any YAML 1.1/1.2 parser reads back.

The core may not depend on PyYAML, and rendering needs only the JSON subset, so strings are written
plain when that is unambiguous and JSON-quoted (a valid YAML double-quoted scalar) otherwise.

With `tables=True` (what the context renders), a list of objects that share the same keys in the
same order and hold only scalars is written as one table, as TOON does: the keys once in a header,
then one row an object, cells separated by commas:

    items[2]{sku,name,quantity}:
      SKU-1,desk lamp,2
      SKU-2,"chair, black",1

`[2]` is the number of rows. A cell is written as the same scalar a YAML value would be, and
JSON-quoted when it also holds a comma; a header key is quoted when it is not a plain word. Every
other value is written as plain YAML. A YAML parser still reads such a document without error, but
reads a table as one string; `tests/test_yaml.py` has a reader for the whole format.
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
    return _short_string(text) if len(text) <= _SHORT else _long_string(text)


_SHORT = 64
"""Strings this short (names, ids, enum-like values) recur from event to event: their scalar is remembered."""


@functools.lru_cache(maxsize=4096)
def _short_string(text: str) -> str:
    return text if _plain_ok(text) else _quoted(text)


def _long_string(text: str) -> str:
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
    if "\n" not in text:
        return False  # most strings: one line
    lines = text.split("\n")
    return (
        "\n" in text.rstrip("\n")
        and all(line.isprintable() and line == line.rstrip() for line in lines)
        and not text.startswith((" ", "\n"))
        # A final line break would need a line break after the block, which a bare dump does not end with.
        and not text.endswith("\n")
    )


def dump_yaml(value: JsonValue, indent: int = 0, *, tables: bool = False) -> str:
    """`value` as block-style YAML, every line indented by `indent` spaces, no trailing newline.

    With `tables=True`, lists of like objects are written as tables (see the module docstring).

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
        rows = [{"name": "v1.2.3", "commit": "abc123"}, {"name": "v1.2.2", "commit": "def456"}]
        assert dump_yaml({"tags": rows}, tables=True).splitlines() == [
            "tags[2]{name,commit}:",
            "  v1.2.3,abc123",
            "  v1.2.2,def456",
        ]
        ```
    """
    out: list[str] = []
    _emit(value, indent, tables, out)
    return "\n".join(out)


def _emit(value: JsonValue, indent: int, tables: bool, out: list[str]) -> None:
    """Append the lines of `value`, indented by `indent`, to `out`."""
    pad = _PADS[indent] if indent < len(_PADS) else " " * indent
    if isinstance(value, dict):
        if not value:
            out.append(pad + "{}")
            return
        # With tables, `key[N]{...}:` is a header: a key with a bracket is quoted so it never reads as one.
        write_key = _quoted_bracket_key if tables else _key
        for key, item in value.items():
            written = write_key(key)
            if len(written) > _MAX_IMPLICIT_KEY:
                out.append(f"{pad}? {written}")  # an explicit key: no length limit
                _entry(pad + ":", item, indent, tables, out)
            elif isinstance(item, str) and "\n" not in item:  # most values: a one-line string, inline
                out.append(f"{pad}{written}: {_short_string(item) if len(item) <= _SHORT else _long_string(item)}")
            elif item is None or isinstance(item, _NUMBERS):
                out.append(f"{pad}{written}: {_scalar(item)}")
            elif tables and isinstance(item, list) and item and (columns := _columns(item)) is not None:
                _table(pad + written, item, columns, indent, out)
            else:
                _entry(pad + written + ":", item, indent, tables, out)
        return
    if isinstance(value, list):
        if not value:
            out.append(pad + "[]")
        elif tables and (columns := _columns(value)) is not None:
            _table(pad, value, columns, indent, out)
        else:
            for item in value:
                if isinstance(item, dict) and item:
                    first = len(out)
                    _emit(item, indent + 2, tables, out)
                    out[first] = pad + "- " + out[first][indent + 2 :]
                else:
                    _entry(pad + "-", item, indent, tables, out)
        return
    if isinstance(value, str) and _block_ok(value):
        chomp = "" if value.endswith("\n") else "-"
        out.append(pad + "|" + chomp)
        out.extend(pad + "  " + line if line else "" for line in value.rstrip("\n").split("\n"))
        return
    out.append(pad + _scalar(value))


_PADS = tuple(" " * n for n in range(32))
_NUMBERS = (bool, int, float)
_CONTAINERS = (dict, list)


def _entry(head: str, item: JsonValue, indent: int, tables: bool, out: list[str]) -> None:
    """`head` (a `key:` or `-`) followed by `item`: inline when scalar, on the next lines when not."""
    if isinstance(item, _CONTAINERS):
        if item:
            out.append(head)
            _emit(item, indent + 2, tables, out)
        else:
            out.append(head + (" {}" if isinstance(item, dict) else " []"))
    elif isinstance(item, str) and _block_ok(item):
        first = len(out)
        _emit(item, indent, tables, out)
        out[first] = head + " " + out[first].strip()
    else:
        out.append(head + " " + _scalar(item))


# -- tables ------------------------------------------------------------------------------------


def _columns(rows: list[JsonValue]) -> tuple[str, ...] | None:
    """The keys of `rows` (not empty) when it can be a table: objects with the same keys, holding scalars."""
    first = rows[0]
    if not isinstance(first, dict) or not first:
        return None
    keys = first.keys()
    for row in rows:
        if not isinstance(row, dict) or row.keys() != keys:
            return None
        for cell in row.values():
            if isinstance(cell, _CONTAINERS):
                return None
    return tuple(keys)


def _table(head: str, rows: list[JsonValue], columns: tuple[str, ...], indent: int, out: list[str]) -> None:
    """`head[N]{a,b}:` and one row an object below it, cells in the header's order."""
    out.append(f"{head}[{len(rows)}]{{{','.join(map(_column, columns))}}}:")
    pad = " " * (indent + 2)
    for row in cast(list[dict[str, JsonValue]], rows):
        out.append(pad + ",".join([_cell(row[key]) for key in columns]))


_TABLE_SPECIAL = re.compile(r"[,{}\[\]\"]")


@functools.lru_cache(maxsize=4096)
def _quoted_bracket_key(key: str) -> str:
    return _quoted(key) if "[" in key or "{" in key else _key(key)


@functools.lru_cache(maxsize=4096)
def _column(key: str) -> str:
    """A header key: plain unless it could be misread there (a comma, bracket or quote, or what YAML quotes)."""
    return key if _plain_ok(key) and not _TABLE_SPECIAL.search(key) else _quoted(key)


def _cell(value: JsonValue) -> str:
    """A cell: the scalar a YAML value would be, JSON-quoted also when it holds a comma."""
    if isinstance(value, str):
        if len(value) <= _SHORT:
            return _short_cell(value)
        return value if "," not in value and _plain_ok(value) else _quoted(value)
    return _scalar(value)


@functools.lru_cache(maxsize=4096)
def _short_cell(text: str) -> str:
    return text if "," not in text and _plain_ok(text) else _quoted(text)
