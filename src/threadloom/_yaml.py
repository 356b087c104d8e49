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
JSON-quoted when it also holds a comma; a header key is quoted when it is not a plain word. Objects
nested in the rows (with the same keys in every row) are flattened into dotted header paths,
`user.login`, so a quoted header key is always one key. Every other value is written as plain YAML. A YAML parser still reads such a document without error, but
reads a table as one string; `tests/test_yaml.py` has a reader for the whole format.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import cast

from pydantic import JsonValue

__all__ = ["dump_yaml", "flat_mapping"]

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
def _key_prefix(key: str) -> str:
    """`key: ` as `_emit` writes a short key with a scalar value (without tables)."""
    return _key(key) + ": "  # a short key stays short when quoted: never an explicit `? key`


@functools.lru_cache(maxsize=4096)
def _table_key_prefix(key: str) -> str:
    """`key: ` as `_emit` writes a short key with a scalar value (with tables)."""
    return _quoted_bracket_key(key) + ": "


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
    if indent == 0 and type(value) is dict and (flat := flat_mapping(value, tables)) is not None:
        return flat
    out: list[str] = []
    _emit(value, indent, tables, out)
    return "\n".join(out)


def flat_mapping(value: dict[str, JsonValue], tables: bool) -> str | None:
    """`dump_yaml(value, tables=tables)` when every value is a one-line string, a number or null, else None.

    Most bodies a thread renders are such mappings (tool arguments, small results); this writes them
    without `_emit`'s general cases. None when a value is anything else (or a key is long, or there
    is none), for `dump_yaml` to write instead.
    """
    text: str | None = None
    prefix = _table_key_prefix if tables else _key_prefix
    for key, item in value.items():
        kind = type(item)
        if isinstance(item, str):  # as `_emit` writes a one-line string
            if "\n" in item:
                return None
            scalar = _short_string(item) if len(item) <= _SHORT else _long_string(item)
        elif kind is int:
            scalar = str(item)
        elif item is None or kind is bool or kind is float:
            scalar = _scalar(item)
        else:
            return None
        if len(key) > _SHORT:
            return None
        # Most mappings have a few keys: the text grows without a list to join.
        text = prefix(key) + scalar if text is None else f"{text}\n{prefix(key)}{scalar}"
    return text


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


Path = tuple[str, ...]
"""Where a cell sits in its row: one key, or the keys down through nested objects."""


def _columns(rows: list[JsonValue]) -> tuple[Path, ...] | None:
    """The cells' paths when `rows` (not empty) can be a table, else None.

    A table holds objects with the same keys and only scalars, or objects nested in them with the same
    keys and only scalars again: a nested object's keys are flattened into the header with dots
    (`user.login`), when every key on the way is a plain word without a dot.
    """
    first = rows[0]
    if not isinstance(first, dict) or not first:
        return None
    keys = first.keys()
    nested = False
    for row in rows:
        if not isinstance(row, dict) or row.keys() != keys:
            return None
        for cell in row.values():
            if isinstance(cell, list):
                return None
            if isinstance(cell, dict):
                nested = True
    if not nested:
        return tuple((key,) for key in keys)
    paths = _paths(first, ())
    if paths is None:
        return None
    shape = set(paths)
    for row in rows:
        found = _paths(cast(dict[str, JsonValue], row), ())
        if found is None or len(found) != len(paths) or set(found) != shape:
            return None
    return paths


def _paths(row: dict[str, JsonValue], prefix: Path) -> tuple[Path, ...] | None:
    """The path of every scalar in `row`, or None when a list, an empty object or an unsafe key is in it."""
    out: list[Path] = []
    for key, value in row.items():
        if isinstance(value, dict):
            if not value or not _segment_ok(key):
                return None
            inner = _paths(value, (*prefix, key))
            if inner is None:
                return None
            out.extend(inner)
        elif isinstance(value, list):
            return None
        else:
            if prefix and not _segment_ok(key):
                return None
            out.append((*prefix, key))
    return tuple(out)


def _segment_ok(key: str) -> bool:
    """Whether `key` can be one step of a dotted header path: a plain column name without a dot."""
    return "." not in key and _column(key) == key


def _table(head: str, rows: list[JsonValue], columns: tuple[Path, ...], indent: int, out: list[str]) -> None:
    """`head[N]{a,b}:` and one row an object below it, cells in the header's order."""
    header = ",".join(_column(path[0]) if len(path) == 1 else ".".join(path) for path in columns)
    out.append(f"{head}[{len(rows)}]{{{header}}}:")
    pad = " " * (indent + 2)
    for row in cast(list[dict[str, JsonValue]], rows):
        out.append(pad + ",".join([_cell(_at(row, path)) for path in columns]))


def _at(row: dict[str, JsonValue], path: Path) -> JsonValue:
    value: JsonValue = row[path[0]]
    for key in path[1:]:
        value = cast(dict[str, JsonValue], value)[key]
    return value


_TABLE_SPECIAL = re.compile(r"[,.{}\[\]\"]")


@functools.lru_cache(maxsize=4096)
def _quoted_bracket_key(key: str) -> str:
    return _quoted(key) if "[" in key or "{" in key else _key(key)


@functools.lru_cache(maxsize=4096)
def _column(key: str) -> str:
    """A header key: plain unless a comma, dot, bracket or quote (or what YAML quotes) could misread it.

    A quoted key is always one key, never a dotted path.
    """
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
