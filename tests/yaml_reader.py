"""A reader for what `threadloom._yaml.dump_yaml` writes, checking each scalar as a YAML parser would.

`load` reads the YAML subset (PyYAML itself when installed); `read` reads it with tables too (the
context's bodies). tests/test_yaml.py and tests/test_context.py read renderings back with it.
"""

import json
import re

from pydantic import JsonValue

__all__ = ["C_PRINTABLE", "load", "plain", "quoted", "read"]

C_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
"""Characters a YAML stream may hold (YAML 1.2 `c-printable`); others must be escaped."""

# What YAML 1.1 (PyYAML's resolver, plus y/n) and 1.2 (core schema) read as something other than a string.
_IMPLICIT = re.compile(
    r"""(?:
      ~|null|Null|NULL|
      yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|y|Y|n|N|
      [-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|
      [-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|
      [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|
      [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|
      [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|
      [0-9]{4}-[0-9]{2}-[0-9]{2}|
      [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[\ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?|
      <<|=
    )""",
    re.VERBOSE,
)
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")


class _Lines:
    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.ends_with_newline = len(self.lines) > 1 and self.lines[-1] == ""
        if self.ends_with_newline:
            self.lines.pop()
        self.i = 0

    def peek(self) -> str | None:
        return self.lines[self.i] if self.i < len(self.lines) else None


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def plain(text: str, at_column_zero: bool) -> JsonValue:
    """A plain scalar as YAML reads it: the JSON literals dump_yaml writes, else a string it checks."""
    if text in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[text]
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"-?[0-9]+\.[0-9]+(?:e[-+][0-9]+)?|-?[0-9]+e[-+][0-9]+", text):
        return float(text)
    assert text, "an empty plain scalar reads as null"
    assert _IMPLICIT.fullmatch(text) is None, f"plain {text!r} reads as a non-string"
    assert text[0] not in _INDICATORS and text == text.strip(), f"plain {text!r} starts badly"
    assert ": " not in text and " #" not in text and not text.endswith(":"), f"plain {text!r} breaks"
    assert text.isprintable(), f"plain {text!r} holds unprintable characters"
    if at_column_zero:
        assert not re.match(r"(?:---|\.\.\.)(?:\s|$)", text), f"plain {text!r} is a document marker"
    return text


def quoted(text: str) -> tuple[str, str]:
    """A JSON-quoted scalar at the start of `text`, and what follows it."""
    value, end = json.JSONDecoder().raw_decode(text)
    assert isinstance(value, str)
    assert C_PRINTABLE.fullmatch(text[:end]), f"quoted {text[:end]!r} holds characters YAML forbids"
    assert "\x85" not in text[:end] and "\u2028" not in text[:end] and "\u2029" not in text[:end]
    return value, text[end:]


def _scalar_or_block(rest: str, src: _Lines, indent: int, at_column_zero: bool) -> JsonValue:
    if rest in ("|", "|-"):
        body: list[str] = []
        while (line := src.peek()) is not None and (line == "" or _indent_of(line) >= indent + 2):
            body.append(line[indent + 2 :])
            src.i += 1
        assert body and body[-1] != "" and body[0] != "" and not body[0].startswith(" ")
        text = "\n".join(body)
        # clip chomping keeps the final line break, which exists only if another line follows
        return text + "\n" if rest == "|" and (src.peek() is not None or src.ends_with_newline) else text
    if rest.startswith('"'):
        value, after = quoted(rest)
        assert after == ""
        return value
    if rest == "{}":
        return {}
    if rest == "[]":
        return []
    return plain(rest, at_column_zero)


def _split_key(content: str) -> tuple[str, str] | None:
    """`(key, rest)` when `content` is a mapping entry, else None."""
    if content.startswith('"'):
        key, after = quoted(content)
        if after == ":" or after.startswith(": "):
            return key, after[2:]
        return None
    at = content.find(": ")
    if at >= 0:
        key, rest = content[:at], content[at + 2 :]
    elif content.endswith(":"):
        key, rest = content[:-1], ""
    else:
        return None
    assert plain(key, False) == key, f"key {key!r} does not read back as a string"
    return key, rest


def _header(content: str) -> tuple[str, int, list[tuple[str, ...]]] | None:
    """`(key, rows, paths)` when `content` is a table header `key[N]{a,b.c}:`, else None.

    A plain column is a path into nested objects (`b.c`); a quoted one is a single key.
    """
    if not content.endswith("}:"):
        return None
    if content.startswith('"'):
        key, after = quoted(content)
    else:
        at = content.find("[")
        if at < 0:
            return None
        key, after = content[:at], content[at:]
        assert "{" not in key, f"a plain key {key!r} with a brace could read as a header"
        if key:
            assert plain(key, False) == key
    match = re.fullmatch(r"\[(0|[1-9][0-9]*)\]\{(.+)\}:", after)
    if match is None:
        return None
    columns: list[tuple[str, ...]] = []
    rest = match.group(2)
    while True:
        if rest.startswith('"'):
            column, rest = quoted(rest)
            columns.append((column,))
        else:
            column, _, tail = rest.partition(",")
            assert not re.search(r'[{}\[\]"]', column), f"plain column {column!r} needs quotes"
            path = tuple(column.split("."))
            assert all(plain(step, False) == step for step in path)
            columns.append(path)
            rest = "," + tail if _ else ""
        if not rest:
            break
        assert rest.startswith(","), rest
        rest = rest[1:]
    assert len(set(columns)) == len(columns)
    return key, int(match.group(1)), columns


def _cells(row: str) -> list[JsonValue]:
    """The cells of a table row: JSON-quoted, or plain scalars without a comma."""
    cells: list[JsonValue] = []
    while True:
        if row.startswith('"'):
            cell, row = quoted(row)
            cells.append(cell)
        else:
            text, _, tail = row.partition(",")
            cells.append(plain(text, False))
            row = "," + tail if _ else ""
        if not row:
            return cells
        assert row.startswith(","), row
        row = row[1:]


def _table(src: _Lines, indent: int, rows: int, columns: list[tuple[str, ...]]) -> list[JsonValue]:
    """The `rows` lines below a header, each at `indent`, read into (nested) objects."""
    out: list[JsonValue] = []
    for _ in range(rows):
        line = src.peek()
        assert line is not None and _indent_of(line) == indent, (line, indent)
        cells = _cells(line[indent:])
        assert len(cells) == len(columns), (line, columns)
        row: dict[str, JsonValue] = {}
        for path, cell in zip(columns, cells, strict=True):
            at = row
            for key in path[:-1]:
                inner = at.setdefault(key, {})
                assert isinstance(inner, dict), f"{path} runs through a value"
                at = inner
            assert path[-1] not in at, f"{path} twice"
            at[path[-1]] = cell
        out.append(row)
        src.i += 1
    return out


def _node(src: _Lines, indent: int) -> JsonValue:
    line = src.peek()
    assert line is not None and _indent_of(line) == indent, (line, indent)
    content = line[indent:]
    if content.startswith("[") and (header := _header(content)) is not None:
        assert header[0] == ""
        src.i += 1
        return _table(src, indent + 2, header[1], header[2])
    if content == "-" or content.startswith("- "):
        items: list[JsonValue] = []
        while (line := src.peek()) is not None and line[indent : indent + 1] == "-" and _indent_of(line) == indent:
            rest = line[indent + 2 :]
            if rest == "":
                src.i += 1
                items.append(_node(src, indent + 2))
            elif rest.startswith("? ") or _header(rest) is not None or _split_key(rest) is not None:
                src.lines[src.i] = " " * (indent + 2) + rest  # `- key: v` opens a mapping at indent + 2
                items.append(_node(src, indent + 2))
            else:
                src.i += 1
                items.append(_scalar_or_block(rest, src, indent, False))
        return items
    if content.startswith("? ") or _header(content) is not None or _split_key(content) is not None:
        mapping: dict[str, JsonValue] = {}
        while (line := src.peek()) is not None and _indent_of(line) == indent and line.strip():
            if (header := _header(line[indent:])) is not None:
                key, rows, columns = header
                assert key not in mapping
                src.i += 1
                mapping[key] = _table(src, indent + 2, rows, columns)
                continue
            if line[indent:].startswith("? "):
                key = _scalar_or_block(line[indent + 2 :], src, indent, False)
                assert isinstance(key, str)
                src.i += 1
                follow = src.peek()
                assert follow is not None and follow[indent : indent + 1] == ":", follow
                line = " " * indent + json.dumps(key) + follow[indent:]
            entry = _split_key(line[indent:])
            assert entry is not None, line
            key, rest = entry
            assert key not in mapping
            src.i += 1
            mapping[key] = _node(src, indent + 2) if rest == "" else _scalar_or_block(rest, src, indent, False)
        return mapping
    src.i += 1
    return _scalar_or_block(content, src, indent, indent == 0)


def load(text: str) -> JsonValue:
    """Reads back the YAML subset dump_yaml writes, checking each scalar as a YAML parser would."""
    try:
        import yaml
    except ImportError:
        src = _Lines(text)
        value = _node(src, 0)
        assert src.peek() is None, f"unread line {src.peek()!r}"
        return value
    loaded: JsonValue = yaml.safe_load(text)
    return loaded


def read(text: str) -> JsonValue:
    """Reads back what `dump_yaml(..., tables=True)` writes: the YAML subset above, plus tables."""
    src = _Lines(text)
    value = _node(src, 0)
    assert src.peek() is None, f"unread line {src.peek()!r}"
    return value
