"""Raw model text to a typed value, tolerantly (factor 4): the parser meets the model halfway.

The steps: find JSON candidates in the text (fenced blocks, each balanced `{...}` / `[...]`, the
whole text), repair each with `json-repair` (trailing commas, single quotes, comments, unquoted
keys, truncation), bend it toward the target's JSON Schema (`_coerce`), and validate with pydantic.
The first candidate that validates wins. Anything else is a `ParseError` whose message tells the
model, in a line or two, what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, cast, overload

import json_repair
from pydantic import JsonValue, TypeAdapter, ValidationError

from ._coerce import coerce, fits, member, norm, resolve
from ._quotes import requote
from .exceptions import ParseError

__all__ = ["MAX_TEXT_LENGTH", "parse", "parse_json_schema"]

T = TypeVar("T")
MAX_TEXT_LENGTH = 200_000
"""Longer texts are refused rather than scanned: parsing must never hang."""
_MAX_CANDIDATES = 32
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_adapters: dict[Any, tuple[TypeAdapter[Any], dict[str, Any]]] = {}


@overload
def parse(text: str, type_: type[T]) -> T: ...
@overload
def parse(text: str, type_: Any) -> Any: ...
def parse(text: str, type_: Any) -> Any:
    r"""Turn raw model text into a value of `type_`, or raise `ParseError`.

    Example:
        ```python
        from typing import Literal

        from threadloom import Intent, parse


        class Deploy(Intent):
            intent: Literal["deploy_backend"] = "deploy_backend"
            tag: str
            replicas: int = 1


        fence = "`" * 3
        text = f"Sure!\n{fence}json\n{{'intent': 'Deploy-Backend', tag: 'v1.2.3', replicas: '3',}}\n{fence}"
        assert parse(text, Deploy) == Deploy(tag="v1.2.3", replicas=3)
        ```

    Args:
        text: What the model wrote.
        type_: A pydantic model, dataclass, union (discriminated or not), `list[...]`, `Literal`,
            enum or primitive.

    Returns:
        A value of `type_`; it always passed pydantic's validation.

    Raises:
        ParseError: No candidate in the text fits; the message says what was wrong. Nothing else
            is raised.
    """
    try:
        adapter, schema = _adapter(type_)
    except Exception as exc:  # an unsupported type is the caller's mistake; say which
        raise ParseError(f"cannot parse into {type_!r}: {exc}", text=_text(text)) from exc
    text = _checked(text)
    try:
        return _parse(text, adapter, schema)
    except ParseError:
        raise
    except Exception as exc:  # a bug here must not become a model-visible traceback
        raise ParseError(
            f"could not read the answer ({type(exc).__name__}); answer with one JSON object", text=text
        ) from exc


def _parse(text: str, adapter: TypeAdapter[Any], schema: dict[str, Any]) -> Any:
    if _is_plain_string(schema):
        return adapter.validate_python(text)  # a string target takes the text as it is
    errors: list[str] = []
    bare = text.strip()
    for candidate in _candidates(text, schema):
        value = coerce(candidate, schema, schema.get("$defs", {}))
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            if candidate != bare or not _wants_structure(schema):
                errors.append(_explain(exc, value, schema))
        except Exception as exc:  # a user validator that raised something odd
            errors.append(f"{type(exc).__name__}: {exc}")
    raise ParseError(errors[0] if errors else _nothing_found(schema, text), text=text)


def _wants_structure(schema: Mapping[str, Any]) -> bool:
    """Whether the target is an object or list, so bare prose is "no JSON", not a wrong value."""
    defs = schema.get("$defs", {})
    branches = _branches(schema) or [schema]
    return any(resolve(b, defs).get("type") in ("object", "array") for b in branches)


def parse_json_schema(text: str, schema: Mapping[str, Any]) -> JsonValue:
    """Like `parse`, for a raw JSON Schema (for tools described only by a schema, such as MCP's).

    Raises:
        ParseError: No candidate in the text fits the schema.
    """
    text = _checked(text)
    try:
        if not isinstance(schema, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            schema = resolve(schema, {})  # a `true` / `false` schema
        defs = cast(Mapping[str, Any], schema.get("$defs") or schema.get("definitions") or {})
        root = resolve(schema, defs)
        if _is_plain_string(root) and fits(text, root, defs):
            return text
        if not root:
            whole = _load_whole(text)  # any JSON goes: json-repair's reading of the whole text
            if whole is not _NOTHING:
                return whole
        for candidate in _candidates(text, root):
            value = coerce(candidate, root, defs)
            if fits(value, root, defs):
                return value
        message = _nothing_found(root, text)
    except Exception as exc:  # a schema we do not understand, or a bug: still only ParseError
        raise ParseError(f"could not read the answer ({type(exc).__name__}: {exc})", text=text) from exc
    raise ParseError(message, text=text)


def _text(text: object) -> str:
    return text if isinstance(text, str) else ""


def _checked(text: object) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected the model's text, got a {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(f"the answer is {len(text):,} characters; answer with one short JSON object", text=text[:1000])
    return text


def _adapter(type_: Any) -> tuple[TypeAdapter[Any], dict[str, Any]]:
    try:
        cached = _adapters.get(type_)
    except TypeError:  # an unhashable type expression: build it each time
        cached = None
    if cached is None:
        adapter = TypeAdapter(type_)
        cached = (adapter, adapter.json_schema())
        try:
            _adapters[type_] = cached
        except TypeError:
            pass
    return cached


def _is_plain_string(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "string" and not any(k in schema for k in ("enum", "const", "anyOf", "oneOf"))


_NOTHING: Any = object()


def _load_whole(text: str, *, repair: bool = True) -> Any:
    """The whole text as JSON (repaired if need be), or `_NOTHING`."""
    try:
        return json.loads(text)
    except ValueError:
        if not repair:
            return _NOTHING
    try:
        value = json_repair.loads(text)
    except Exception:  # json-repair gave up
        return _NOTHING
    return _NOTHING if value == "" else value


def _branches(schema: Mapping[str, Any]) -> list[Any] | None:
    return schema.get("anyOf") or schema.get("oneOf")


def _candidates(text: str, schema: Mapping[str, Any]) -> list[JsonValue]:
    """JSON values found in the text, most likely first, each once; the bare text last."""
    seen: list[JsonValue] = []
    stripped = text.strip()
    whole = _load_whole(stripped, repair=False) if stripped[:1] not in ("{", "[", "") else _NOTHING
    if whole is not _NOTHING and not isinstance(whole, str):
        seen.append(whole)  # 42, true, null: the whole answer is one JSON scalar
    requoted = requote(text)
    for source in (requoted, text) if requoted != text else (text,):
        for snippet in _snippets(source):
            for value in _load(snippet):
                if value not in seen and len(seen) < _MAX_CANDIDATES:
                    seen.append(value)
    objects = [v for v in seen if isinstance(v, dict)]
    if schema.get("type") == "array" and len(objects) > 1:
        seen.insert(0, cast(JsonValue, objects))  # several top-level objects where a list is asked for
    if stripped and stripped not in seen:
        seen.append(stripped)  # the bare text, for scalars, enums and literals
    return seen


def _snippets(text: str) -> Iterator[str]:
    for match in _FENCE.finditer(text):
        if match.group(1).strip():
            yield match.group(1)
    yield from _balanced(text)
    yield text


def _balanced(text: str) -> Iterator[str]:
    """Each top-level `{...}` or `[...]` in the text (an unclosed one runs to the end)."""
    i, n, count = 0, len(text), 0
    while i < n and count < _MAX_CANDIDATES:
        if text[i] not in "{[":
            i += 1
            continue
        end = _match_close(text, i)
        yield text[i:end]
        count += 1
        i = max(end, i + 1)


def _match_close(text: str, start: int) -> int:
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'" and (char == '"' or not text[i - 1].isalnum()):
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _load(snippet: str) -> list[JsonValue]:
    snippet = snippet.strip()
    if not snippet or snippet[0] not in "{[\"'":
        return []
    try:
        return [cast(JsonValue, json.loads(snippet))]
    except ValueError:
        pass
    try:
        repaired = cast(JsonValue, json_repair.loads(snippet))
    except Exception:  # json-repair gave up on this snippet: not a candidate
        return []
    if repaired == "" or repaired is None:
        return []
    if isinstance(repaired, list) and snippet.startswith("{"):
        return cast(list[JsonValue], repaired)  # several objects in a row: each is a candidate
    return [repaired]


def _intents(schema: Mapping[str, Any]) -> list[str]:
    defs = schema.get("$defs", {})
    names: list[str] = []
    for branch in _branches(schema) or [schema]:
        const = member(member(resolve(branch, defs).get("properties"), "intent"), "const")
        if isinstance(const, str):
            names.append(const)
    return names


def _nothing_found(schema: Mapping[str, Any], text: str) -> str:
    intents = _intents(schema)
    if intents:
        want = f'one JSON object whose "intent" is one of: {", ".join(intents)}'
    else:
        want = f"JSON matching {json.dumps(_summary(schema))}"
    got = "an empty answer" if not text.strip() else "text with no usable JSON"
    return f"expected {want}; got {got}"


def _summary(schema: Mapping[str, Any]) -> Any:
    if "properties" in schema:
        return {"type": "object", "required": schema.get("required", [])}
    return {k: v for k, v in schema.items() if k in ("type", "enum", "const", "items")}


def _explain(exc: ValidationError, value: JsonValue, schema: Mapping[str, Any]) -> str:
    """The first validation problem, in one line the model can act on."""
    intents = _intents(schema)
    if intents and isinstance(value, dict):
        named = value.get("intent")
        if not isinstance(named, str) or norm(named) not in {norm(i) for i in intents}:
            return f'unknown intent {named!r}; "intent" must be one of: {", ".join(intents)}'
    problems: list[str] = []
    for error in exc.errors()[:3]:
        loc = [str(p) for p in error["loc"] if not (intents and p in intents)]
        where = ".".join(loc) or "the answer"
        if error["type"] == "missing":
            problems.append(f"field `{where}` is required")
        else:
            problems.append(f"`{where}`: {error['msg']}")
    prefix = f"{value.get('intent')}: " if intents and isinstance(value, dict) else ""
    return prefix + "; ".join(problems)
