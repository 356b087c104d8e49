"""`parse` and `parse_json_schema`: from raw model text to a value that passed validation.

The steps: find the candidates in the text (`_candidates`: fenced blocks, each balanced `{...}` /
`[...]`, the whole text, repaired within a budget), and for an intent target the tool calls of
open models' dialects (`_dialects`); bend each toward the target's JSON Schema (`_coerce`) and
validate. The first candidate that validates wins, unless its text was cut off before it ended.
Anything else is a `ParseError` whose message tells the model, in a line or two, what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast, overload

from pydantic import JsonValue, TypeAdapter, ValidationError

from ..exceptions import ParseError
from ._candidates import NOTHING, Candidate, Finder
from ._coerce import coerce, fits, member, norm, resolve
from ._dialects import Call, Tool, as_call, read_calls, tools_of
from ._scan import MAX_DEPTH, TooDeep

__all__ = ["MAX_TEXT_LENGTH", "parse", "parse_json_schema"]

T = TypeVar("T")
MAX_TEXT_LENGTH = 200_000
"""Longer texts are refused rather than scanned: parsing must never hang."""
_MAX_CALLS = 16
_adapters: dict[Any, tuple[TypeAdapter[Any], dict[str, Any], Mapping[str, Tool]]] = {}


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
        adapter, schema, tools = _adapter(type_)
    except Exception as exc:  # an unsupported type is the caller's mistake; say which
        raise ParseError(f"cannot parse into {type_!r}: {exc}", text=_text(text)) from exc
    text = _checked(text)
    try:
        return _parse(text, adapter, schema, tools)
    except ParseError:
        raise
    except Exception as exc:  # a bug here must not become a model-visible traceback
        raise ParseError(
            f"could not read the answer ({type(exc).__name__}); answer with one JSON object", text=text
        ) from exc


def _parse(text: str, adapter: TypeAdapter[Any], schema: dict[str, Any], tools: Mapping[str, Tool]) -> Any:
    if _is_plain_string(schema):
        return adapter.validate_python(text)  # a string target takes the text as it is
    defs = cast(Mapping[str, Any], schema.get("$defs", {}))
    finder = Finder()
    candidates = _ordered(text, schema, defs, finder, tools)
    errors: list[str] = []
    bare = text.strip()
    for candidate in candidates:
        value = coerce(candidate.value, schema, defs)
        try:
            result = adapter.validate_python(value)
        except ValidationError as exc:
            if candidate.value != bare or not _wants_structure(schema):
                errors.append(_explain(exc, value, schema))
            continue
        except Exception as exc:  # a user validator that raised something odd
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if candidate.cut:
            raise _cut_off(candidate.cut, text)
        return result
    raise _refusal(errors, candidates, finder, schema, text)


def _ordered(
    text: str,
    schema: Mapping[str, Any],
    defs: Mapping[str, Any],
    finder: Finder,
    tools: Mapping[str, Tool] | None = None,
) -> list[Candidate]:
    """The candidates, a tool call of an offered intent first (read from any dialect).

    `tools`: the schema's offered intents (`tools_of`), when the caller has them already.

    Raises:
        ParseError: The answer calls several tools, or nests too deep.
    """
    try:
        found = finder.candidates(text, array=resolve(schema, defs).get("type") == "array")
        if tools is None:
            tools = tools_of(schema, defs)
        if not tools:
            return found
        calls = read_calls(text, tools, lambda snippet: _load_one(finder, snippet))
    except TooDeep as exc:
        raise ParseError(
            f"the answer nests brackets more than {MAX_DEPTH} deep; answer with one flat JSON object", text=text
        ) from exc
    for candidate in found:
        values = candidate.value if isinstance(candidate.value, list) else [candidate.value]
        for value in values[:_MAX_CALLS]:
            call = as_call(value, tools)
            if call is not None:
                calls.append(Call(call.name, call.arguments, candidate.cut))
    distinct: list[Call] = []
    for call in calls:
        if all((call.name, call.arguments) != (c.name, c.arguments) for c in distinct):
            distinct.append(call)
    if len(distinct) > 1:
        names = ", ".join(call.name for call in distinct)
        raise ParseError(f"call exactly one tool per answer; you called {len(distinct)}: {names}", text=text)
    if distinct and distinct[0].cut:
        raise _cut_off(distinct[0].cut, text)
    return [Candidate(distinct[0].intent()), *found] if distinct else found


def _load_one(finder: Finder, snippet: str) -> tuple[JsonValue, str | None] | None:
    values = finder.load(snippet)
    return (values[0], finder.cut(snippet)) if values else None


def _cut_off(where: str, text: str) -> ParseError:
    return ParseError(
        f"your answer was cut off ({where}) before it ended; answer again with the whole JSON object, shorter if need be",
        text=text,
        cut_off=True,
    )


def _refusal(
    errors: list[str], candidates: list[Candidate], finder: Finder, schema: Mapping[str, Any], text: str
) -> ParseError:
    """The error for an answer no candidate of which validated."""
    cut = next((c.cut for c in candidates if c.cut and c.snippet and isinstance(c.value, dict)), finder.cut_unread)
    if cut is not None:
        return _cut_off(cut, text)
    if not errors and finder.too_long:
        message = f"the JSON in the answer is broken and too long to repair ({finder.too_long:,} characters); answer with valid JSON"
        return ParseError(message, text=text)
    return ParseError(errors[0] if errors else _nothing_found(schema, text), text=text)


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
        finder = Finder()
        if not root:
            whole = _load_whole(text, finder)  # any JSON goes: the whole text, repaired
            if whole is not NOTHING:
                return whole
        candidates = _ordered(text, root, defs, finder)
        for candidate in candidates:
            value = coerce(candidate.value, root, defs)
            if fits(value, root, defs):
                if candidate.cut:
                    raise _cut_off(candidate.cut, text)
                return value
        error = _refusal([], candidates, finder, root, text)
    except ParseError:
        raise
    except Exception as exc:  # a schema we do not understand, or a bug: still only ParseError
        raise ParseError(f"could not read the answer ({type(exc).__name__}: {exc})", text=text) from exc
    raise error


def _text(text: object) -> str:
    return text if isinstance(text, str) else ""


def _checked(text: object) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected the model's text, got a {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(f"the answer is {len(text):,} characters; answer with one short JSON object", text=text[:1000])
    return text


def _adapter(type_: Any) -> tuple[TypeAdapter[Any], dict[str, Any], Mapping[str, Tool]]:
    """What parsing into `type_` needs, made once per type: its adapter, JSON schema and offered intents."""
    try:
        cached = _adapters.get(type_)
    except TypeError:  # an unhashable type expression: build it each time
        cached = None
    if cached is None:
        adapter = TypeAdapter(type_)
        schema = adapter.json_schema()
        cached = (adapter, schema, tools_of(schema, cast(Mapping[str, Any], schema.get("$defs", {}))))
        try:
            _adapters[type_] = cached
        except TypeError:
            pass
    return cached


def _is_plain_string(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "string" and not any(k in schema for k in ("enum", "const", "anyOf", "oneOf"))


def _load_whole(text: str, finder: Finder) -> Any:
    """The whole text as JSON (repaired within the budget, and only if not cut off), or `NOTHING`."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    except RecursionError:
        return NOTHING
    if len(text) > finder.budget:
        return NOTHING  # past the budget: left to the candidates' cheap readings
    try:
        if finder.cut(text) is not None:
            return NOTHING  # left to the candidates, which say why it is refused
    except TooDeep:
        return NOTHING
    value = finder.repair(text)
    return NOTHING if value == "" else value


def _branches(schema: Mapping[str, Any]) -> list[Any] | None:
    return schema.get("anyOf") or schema.get("oneOf")


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
        if named is None and ("arguments" in value or "parameters" in value):
            named = value.get("name")  # a tool call's shape, naming no offered tool
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
