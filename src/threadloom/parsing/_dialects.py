"""Tool calls written as text in the dialects of open models, read into `{"intent": name, **arguments}`.

Servers without a working tool-call parser for a model hand its call back as text. When the
target is an intent (a union of them, or one model with an `intent` literal), these dialects
are read, and only for the names of the offered tools:

- JSON calls: `{"name": ..., "arguments" | "parameters": {...}}` (Hermes' `<tool_call>`,
  `<function_call>`, a code fence, Llama 3's bare JSON, Mistral's `[TOOL_CALLS][...]`; also
  OpenAI's `{"type": "function", "function": {...}}`). `as_call` reads those the JSON pipeline finds.
- Qwen3-Coder: `<function=NAME><parameter=KEY>VALUE</parameter></function>` (and Llama 3.1's
  `<function=NAME>{...}</function>`).
- GLM: `<tool_call>NAME<arg_key>KEY</arg_key><arg_value>VALUE</arg_value></tool_call>`.
- Mistral: `[TOOL_CALLS]NAME[ARGS]{...}` (with an optional `[CALL_ID]...`, or no `[ARGS]`).
- Pythonic (Llama 3.2/4, Gemma, LFM2): `[name(a=1, b='x')]`, or a bare `name(...)` that is
  all of the answer or of a code fence; read with `ast`, never run.

Values written as text (the XML and GLM dialects) are typed by the tool's schema: where the
property cannot be a string, `2`, `True` and `['a', 'b']` are read as JSON or a Python literal.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

from pydantic import JsonValue

from ._coerce import member, norm, resolve
from ._scan import scan

__all__ = ["Call", "Tool", "as_call", "read_calls", "tools_of"]

Schema = Mapping[str, Any]
Loader = Callable[[str], tuple[JsonValue, str | None] | None]
_MAX_CALLS = 16
_FUNCTION = re.compile(r"<function=([^>\n<]{1,200})>")
_GLM = re.compile(r"<tool_call>\s*([A-Za-z_][\w.\-]*)\s*(?=<arg_key>|</tool_call>|$)")
_MISTRAL = re.compile(r"\[TOOL_CALLS\]\s*([A-Za-z_][\w.\-]*)\s*(?:\[CALL_ID\]\s*[^\[{\s]*\s*)?(?:\[ARGS\])?\s*(?=\{)")
_FENCE_BODY = re.compile(r"```[ \t]*(?:tool_code|python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_SPACE = re.compile(r"\s*")
_EOF_ERRORS = ("was never closed", "unterminated", "unexpected EOF", "EOF while")


@dataclass(frozen=True, slots=True)
class Tool:
    """An offered intent: its name and the schema of its object."""

    name: str
    schema: Schema
    defs: Schema = field(default_factory=dict[str, Any])


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call read from the text."""

    name: str
    arguments: dict[str, JsonValue]
    cut: str | None = None
    """Why the call was cut off before its end, or None."""

    def intent(self) -> dict[str, JsonValue]:
        return {**{k: v for k, v in self.arguments.items() if k != "intent"}, "intent": self.name}


def tools_of(schema: Schema, defs: Schema) -> dict[str, Tool]:
    """The offered intents of a target schema, by `norm`ed name (empty when it is no intent)."""
    tools: dict[str, Tool] = {}
    for branch in schema.get("anyOf") or schema.get("oneOf") or [schema]:
        resolved = resolve(branch, defs)
        name = member(member(resolved.get("properties"), "intent"), "const")
        if isinstance(name, str):
            tools[norm(name)] = Tool(name, resolved, defs)
    return tools


def as_call(value: JsonValue, tools: Mapping[str, Tool]) -> Call | None:
    """`value` as a JSON tool call of an offered tool, or None when it is not one."""
    if not isinstance(value, dict):
        return None
    function = value.get("function")
    if isinstance(function, dict) and set(value) <= {"type", "id", "function"}:
        value = function  # OpenAI's shape
    name = value.get("name")
    if (
        not isinstance(name, str)
        or norm(name) not in tools
        or not set(value) <= {"name", "arguments", "parameters", "type", "id"}
    ):
        return None
    if value.get("type", "function") != "function" or not ("arguments" in value or "parameters" in value):
        return None
    arguments = value.get("arguments", value.get("parameters"))
    if isinstance(arguments, str):
        arguments = _json(arguments)
    if not isinstance(arguments, dict):
        return None
    return Call(tools[norm(name)].name, arguments)


def read_calls(text: str, tools: Mapping[str, Tool], load: Loader) -> list[Call]:
    """The calls written in the XML, GLM, Mistral-name and pythonic dialects, in text order."""
    found: list[tuple[int, Call]] = []
    for reader in (_qwen_calls, _glm_calls, _mistral_calls, _pythonic_calls):
        for (at, call), _ in zip(reader(text, tools, load), range(_MAX_CALLS), strict=False):
            if all(at != a for a, _ in found):
                found.append((at, call))
    return [call for _, call in sorted(found, key=lambda pair: pair[0])]


def _tool(name: str, tools: Mapping[str, Tool]) -> Tool | None:
    return tools.get(norm(name.strip()))


def _qwen_calls(text: str, tools: Mapping[str, Tool], load: Loader) -> Iterator[tuple[int, Call]]:
    if "<function=" not in text:
        return
    for match in islice(_FUNCTION.finditer(text), _MAX_CALLS):
        tool = _tool(match.group(1), tools)
        if tool is None:
            continue
        start = match.end()
        end, closed = _first_of(text, start, ("</function>", "</tool_call>", "<function="))
        body = text[start:end]
        cut = None if closed or end < len(text) else "before </function>"
        if body.strip().startswith("{"):  # Llama 3.1: <function=name>{...}</function>
            loaded = load(body.strip())
            if loaded is not None and isinstance(loaded[0], dict):
                yield match.start(), Call(tool.name, loaded[0], cut or loaded[1])
            continue
        arguments: dict[str, JsonValue] = {}
        for key, raw, value_cut in _parameters(body):
            arguments[key] = _typed(raw, tool, key)
            cut = cut or (value_cut if not closed else None)
        yield match.start(), Call(tool.name, arguments, cut)


def _parameters(body: str) -> Iterator[tuple[str, str, str | None]]:
    at = body.find("<parameter=")
    while at != -1:
        close = body.find(">", at)
        if close == -1:
            yield body[at + 11 :].strip(), "", "inside a parameter's name"
            return
        key = body[at + 11 : close].strip()
        end, closed = _first_of(body, close + 1, ("</parameter>", "<parameter="))
        raw = body[close + 1 : end]
        raw = raw[1:] if raw.startswith("\n") else raw
        raw = raw[:-1] if raw.endswith("\n") else raw
        yield key, raw, None if closed or end < len(body) else "before </parameter>"
        at = body.find("<parameter=", end)


def _glm_calls(text: str, tools: Mapping[str, Tool], load: Loader) -> Iterator[tuple[int, Call]]:
    if "<tool_call>" not in text:
        return
    for match in islice(_GLM.finditer(text), _MAX_CALLS):
        tool = _tool(match.group(1), tools)
        if tool is None:
            continue
        end = text.find("</tool_call>", match.end())
        body = text[match.end() : end if end != -1 else len(text)]
        pairs = _pairs(body)
        if pairs is None:
            continue  # stray tags: no guess at what was meant
        arguments = {key: _typed(raw, tool, key) for key, raw in pairs}
        yield match.start(), Call(tool.name, arguments, "before </tool_call>" if end == -1 else None)


def _pairs(body: str) -> list[tuple[str, str]] | None:
    pairs: list[tuple[str, str]] = []
    i = _skip(body, 0)
    while i < len(body):
        key_end = body.find("</arg_key>", i)
        if not body.startswith("<arg_key>", i) or key_end == -1:
            return None
        key = body[i + 9 : key_end]
        j = _skip(body, key_end + 10)
        value_end = body.find("</arg_value>", j)
        if "<" in key or not body.startswith("<arg_value>", j) or value_end == -1:
            return None
        pairs.append((key.strip(), body[j + 11 : value_end]))
        i = _skip(body, value_end + 12)
    return pairs


def _skip(text: str, at: int) -> int:
    """The index of the first non-blank character from `at`."""
    match = _SPACE.match(text, at)
    return match.end() if match else at


def _mistral_calls(text: str, tools: Mapping[str, Tool], load: Loader) -> Iterator[tuple[int, Call]]:
    if "[TOOL_CALLS]" not in text:
        return
    for match in islice(_MISTRAL.finditer(text), _MAX_CALLS):
        tool = _tool(match.group(1), tools)
        if tool is None:
            continue
        end = scan(text, match.end()).end
        loaded = load(text[match.end() : end])
        if loaded is not None and isinstance(loaded[0], dict):
            yield match.start(), Call(tool.name, loaded[0], loaded[1])


def _pythonic_calls(text: str, tools: Mapping[str, Tool], load: Loader) -> Iterator[tuple[int, Call]]:
    if "(" not in text:
        return
    names = "|".join(re.escape(t.name) for t in tools.values())
    for match in islice(re.finditer(rf"\[\s*(?:{names})\s*\(", text), _MAX_CALLS):
        end = scan(text, match.start()).end
        yield from _python_list(text[match.start() : end], match.start(), tools)
    segments = [(m.group(1), m.start(1)) for m in islice(_FENCE_BODY.finditer(text), _MAX_CALLS)]
    stripped = text.strip()
    for segment, at in [*segments, (stripped, text.find(stripped))]:
        if re.match(rf"\s*(?:{names})\s*\(", segment):
            yield from _python_list(segment.strip(), at, tools)


def _python_list(source: str, at: int, tools: Mapping[str, Tool]) -> Iterator[tuple[int, Call]]:
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        if any(marker in str(exc.msg) for marker in _EOF_ERRORS):
            name = source.lstrip("[ \n").split("(", 1)[0].strip()
            if (tool := _tool(name, tools)) is not None:
                yield at, Call(tool.name, {}, "inside a call")
        return
    except (ValueError, RecursionError, MemoryError):
        return
    nodes = tree.elts if isinstance(tree, ast.List) else [tree]
    for index, node in enumerate(nodes):
        call = _python_call(node, tools)
        if call is None:
            return  # one part is no call of an offered tool: the whole is no call
        yield at + index, call


def _python_call(node: ast.expr, tools: Mapping[str, Tool]) -> Call | None:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        return None
    tool = _tool(node.func.id, tools)
    if tool is None:
        return None
    arguments: dict[str, JsonValue] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        try:
            value = _jsonable(ast.literal_eval(keyword.value))
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return None
        arguments[keyword.arg] = value
    return Call(tool.name, arguments)


def _jsonable(value: object) -> JsonValue:
    """A Python literal as JSON (tuples as lists); anything else raises `ValueError`."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in cast(list[object], value)]
    if isinstance(value, dict):
        items = cast(dict[object, object], value).items()
        if all(isinstance(k, str) for k, _ in items):
            return {cast(str, k): _jsonable(v) for k, v in items}
    raise ValueError(f"not JSON: {type(cast(object, value)).__name__}")


def _typed(raw: str, tool: Tool, key: str) -> JsonValue:
    """A value written as text, typed by the property's schema (a string stays as written)."""
    prop = member(tool.schema.get("properties"), key)
    types = _types(resolve(cast(Schema, prop), tool.defs) if isinstance(prop, Mapping) else {}, tool.defs)
    if "null" in types and raw.strip() == "null":
        return None
    if not types or "string" in types:
        return raw
    text = raw.strip()
    decoded = _json(text)
    if decoded is not None or text == "null":
        return decoded
    try:
        return _jsonable(ast.literal_eval(text)) if len(text) <= 100_000 else text
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return text  # left to the coercion ("yes" for a bool, "3 items" for an int)


def _types(schema: Schema, defs: Schema) -> set[str]:
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        found: set[str] = set()
        for branch in cast(list[Schema], branches):
            found |= _types(resolve(branch, defs), defs)
        return found
    kind = schema.get("type")
    if isinstance(kind, list):
        return {str(k) for k in cast(list[object], kind)}
    if kind is None and "enum" in schema:
        return {"string" if isinstance(v, str) else "other" for v in schema["enum"]}
    return {str(kind)} if kind else set()


def _json(text: str) -> JsonValue:
    try:
        return cast(JsonValue, json.loads(text))
    except (ValueError, RecursionError):
        return None


def _first_of(text: str, start: int, markers: tuple[str, ...]) -> tuple[int, bool]:
    """The first of `markers` after `start` (or the text's end), and whether it is a closing tag."""
    best, closing = len(text), False
    for marker in markers:
        at = text.find(marker, start, best)
        if at != -1:
            best, closing = at, marker.startswith("</")
    return best, closing
