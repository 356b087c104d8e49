"""Schema-aligned coercion: bend a repaired JSON value toward a JSON Schema, then check it fits.

`coerce` never raises and never invents required data; it only fixes what a model commonly gets
wrong (numbers as strings, wrong case, one object for a list, wrapped arguments). `fits` checks
the subset of JSON Schema that pydantic emits, so a union branch can be chosen before validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from pydantic import JsonValue

from ._constraints import asserts_hold
from ._mentions import choose, fold, literal_names

__all__ = ["coerce", "fits", "member", "norm", "resolve"]

Schema = Mapping[str, Any]
_MAX_DEPTH = 48
# Commas only as thousands separators ("1,200"): "0,25" is a decimal comma, not 25, and is left to fail.
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d[\d_]*)"
_INT = re.compile(rf"^[-+]?{_DIGITS}$")
_FLOAT = re.compile(rf"^[-+]?(?:{_DIGITS}(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?$")  # a mantissa: "e5" is no number
# A number in words ("about 1,200 rows"): not part of a longer token such as ",5", "3,5" or "v1.2.3".
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.,])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d|[\w.,]\d)")
_REFUSED: JsonValue = {"refused": "no option matches"}  # fits no enum or literal
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


_NOT_IN_NAMES = re.compile(r"[-_\s]")


def norm(text: str) -> str:
    """A name for loose matching: case, dashes, underscores and spaces do not count."""
    return _NOT_IN_NAMES.sub("", text).lower()


def resolve(schema: Schema | bool, defs: Schema) -> Schema:
    """Follow `$ref` into `$defs` (a missing target resolves to the empty, anything-goes schema)."""
    if not isinstance(schema, Mapping):
        # JSON Schema allows `true` (anything) and `false` (nothing) as schemas.
        return {} if schema is not False else {"not": {}}
    seen = 0
    while "$ref" in schema and seen < _MAX_DEPTH:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = cast(Schema, defs.get(name, {}))
        seen += 1
    return schema


def _types(schema: Schema) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return {str(k) for k in cast(list[object], kind)}
    return {str(kind)} if kind else set()


def _branches(schema: Schema) -> list[Schema] | None:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return list(schema[key])
    return None


def coerce(value: JsonValue, schema: Schema, defs: Schema, depth: int = 0) -> JsonValue:
    """`value` bent toward `schema` where the intent is unambiguous; otherwise `value` unchanged."""
    schema = resolve(schema, defs)
    if depth > _MAX_DEPTH or not schema:
        return value
    branches = _branches(schema)
    if branches is not None:
        return _coerce_union(value, branches, defs, depth)
    if "const" in schema or "enum" in schema:
        options = [schema["const"]] if "const" in schema else list(schema["enum"])
        aliases = cast(Mapping[str, JsonValue], schema.get("x-aliases") or {})
        return _match_literal(value, options, aliases)
    types = _types(schema)
    if "null" in types and value in ("null", "None", "none", ""):
        return None
    if "object" in types:
        return _coerce_object(value, schema, defs, depth)
    if "array" in types:
        return _coerce_array(value, schema, defs, depth)
    if types & {"integer", "number", "boolean", "string"}:
        return _coerce_scalar(value, types)
    return value


def _match_literal(value: JsonValue, options: list[JsonValue], aliases: Mapping[str, JsonValue]) -> JsonValue:
    """One of `options` for `value`: itself, a case-insensitive match, or the one the text mentions."""
    names = literal_names(options, aliases)
    if any(value == o and type(value) is type(o) and names.get(str(o), [o]) == [o] for o in options):
        return value  # exactly an option (an option with an alias is only known by its alias)
    if isinstance(value, dict) and len(value) == 1:
        [inner] = value.values()
        if not isinstance(inner, dict | list):
            return _match_literal(inner, options, aliases)  # {"status": 1} for 1
    if isinstance(value, list) and value:
        for item in cast(list[JsonValue], value):  # ["TWO"] where one value is expected: the first that fits
            chosen = _match_literal(item, options, aliases)
            if chosen in options:
                return chosen
        return value
    if isinstance(value, str) and value in names and names[value] != [value]:
        return _REFUSED  # an option's own name where only its alias was offered
    if isinstance(value, str):
        text = value.strip().strip("\"'`").strip()
        folded = fold(text)
        same = [o for o, option_names in names.items() if any(fold(n) == folded for n in option_names)]
        if len(same) == 1:
            return same[0]
        for option in (o for o in options if not isinstance(o, str)):
            if _coerce_scalar(text, {_json_type(option)}) == option:
                return option
        chosen = choose(text, names)
        if chosen is not None:
            return chosen
    if isinstance(value, int | float) and not isinstance(value, bool):
        named = [o for o in options if isinstance(o, str) and o == str(value)]
        if len(named) == 1:
            return named[0]
    return value


def _json_type(value: JsonValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "null"


def _coerce_scalar(value: JsonValue, types: set[str]) -> JsonValue:
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list | dict):
        value = value[0]  # a lone item where one value is expected
    if isinstance(value, str):
        text = value.strip()
        if "integer" in types and _INT.match(text):
            return int(text.replace(",", "").replace("_", ""))
        if types & {"integer", "number"} and not _FLOAT.match(text) and not any(c in text for c in "{["):
            numbers = _NUMBER_IN_TEXT.findall(text)
            text = numbers[0] if len(numbers) == 1 else text  # "The answer is 42." -> 42; two numbers: no answer
        if types & {"integer", "number"} and _FLOAT.match(text):
            number = float(text.replace(",", "").replace("_", ""))
            if "number" in types:
                return number
            return int(number) if number.is_integer() else value
        if "boolean" in types and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if "boolean" in types and (said := choose(text, {"true": ["true"], "false": ["false"]}, case_first=False)):
            return said == "true"  # "The answer is True."
        return value
    if "string" in types and isinstance(value, int | float) and "integer" not in types and "number" not in types:
        return json.dumps(value) if isinstance(value, bool) else str(value)
    if "integer" in types and isinstance(value, float) and value.is_integer() and "number" not in types:
        return int(value)
    if types == {"boolean"} and value in (0, 1) and not isinstance(value, bool):
        return value == 1
    if types == {"number"} and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # a float field: 1 reads as 1.0
    return value


def _coerce_array(value: JsonValue, schema: Schema, defs: Schema, depth: int) -> JsonValue:
    if value is None:
        return value
    if isinstance(value, str):
        parsed = _json_or_none(value)
        value = parsed if isinstance(parsed, list) else value
    if not isinstance(value, list):
        value = [value]  # one item where a list is expected
    items = cast(Schema, schema.get("items") or {})
    return [coerce(item, items, defs, depth + 1) for item in value]


def _coerce_object(value: JsonValue, schema: Schema, defs: Schema, depth: int) -> JsonValue:
    properties = cast(Mapping[str, Schema], schema.get("properties") or {})
    value = _as_object(value, properties, defs)
    if not isinstance(value, dict):
        return value
    value = _unwrap_arguments(value, properties)
    shown: dict[str, str] = {}  # the name the model was shown -> the property
    shown_as_alias: set[str] = set()
    for name, sub in properties.items():
        alias = sub.get("x-alias") if isinstance(sub, Mapping) else None  # pyright: ignore[reportUnnecessaryIsInstance]
        # A property with an alias is known by its alias only: that is the name the model was shown.
        if isinstance(alias, str):
            shown_as_alias.add(name)
        shown[alias if isinstance(alias, str) else name] = name
    loose: dict[str, str | None] = {}  # a loose spelling -> its one property, None where two share it
    for written, name in shown.items():
        loose[_key(written)] = name if _key(written) not in loose else None
    extra = schema.get("additionalProperties")
    out: dict[str, JsonValue] = {}
    for key, item in value.items():
        # A shown name is its own property (`intent` is the envelope, never a renamed `intent_`);
        # a loose spelling only where it names one property.
        name = shown[key] if key in shown else loose.get(_key(key)) or key
        if (name == key and key in shown_as_alias) or (name in out and name != key):
            continue  # the real name where the alias was asked for, or a loose duplicate of an exact key
        sub = properties.get(name)
        if sub is None and isinstance(extra, dict):
            sub = cast(Schema, extra)
        out[name] = coerce(item, sub, defs, depth + 1) if sub is not None else item
    _fill_missing(out, schema, properties, defs)
    return out


def _as_object(value: JsonValue, properties: Mapping[str, Schema], defs: Schema) -> JsonValue:
    """An object from what the model wrote instead: a JSON string, a one-item list, a bare value."""
    if isinstance(value, str):
        parsed = _json_or_none(value)
        value = parsed if isinstance(parsed, dict) else value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    if len(properties) == 1 and value is not None and not isinstance(value, dict | list):
        [(name, sub)] = properties.items()
        const = resolve(sub, defs).get("const")
        if name == "intent" and not (isinstance(value, str) and isinstance(const, str) and norm(value) == norm(const)):
            return value  # text that only mentions an intent's name is no call of it
        if isinstance(value, int | float) or "string" not in _types(resolve(sub, defs)):
            return {name: value}  # 1214 where {"foo": int} is expected (not text: that is no object)
    return value


def _fill_missing(out: dict[str, JsonValue], schema: Schema, properties: Mapping[str, Schema], defs: Schema) -> None:
    """A missing optional field gets its default, a missing required one null when it may be null (as the model meant).

    An optional field with no default shown stays missing: the type's own default applies, as not given.
    """
    required = schema.get("required", ())
    for name, sub in properties.items():
        if name in out:
            continue
        resolved = resolve(sub, defs)
        if "default" in resolved and name not in required:
            out[name] = cast(JsonValue, resolved["default"])
        elif name in required and _says_nullable(resolved, defs):
            out[name] = None


def _says_nullable(schema: Schema, defs: Schema) -> bool:
    """Whether a schema names null as allowed (not merely allows anything)."""
    branches = _branches(schema) or [schema]
    return any("null" in _types(resolve(b, defs)) for b in branches)


def _key(name: str) -> str:
    """A property name for loose matching: case, accents and separators do not count."""
    return fold(name).replace(" ", "")


def _unwrap_arguments(value: dict[str, JsonValue], properties: Mapping[str, Schema]) -> dict[str, JsonValue]:
    """`{"intent": "x", "arguments": {...}}` (a tool-call habit) becomes one flat object."""
    for wrapper in ("arguments", "args", "parameters", "params", "input"):
        inner = value.get(wrapper)
        if wrapper not in properties and isinstance(inner, dict) and "intent" in properties:
            rest = {k: v for k, v in value.items() if k != wrapper}
            return {**inner, **rest}
    return value


def _coerce_union(value: JsonValue, branches: list[Schema], defs: Schema, depth: int) -> JsonValue:
    resolved = [resolve(b, defs) for b in branches]
    if value is None and any("null" in _types(b) for b in resolved):
        return None
    tagged = _pick_tagged(value, resolved)
    if tagged is not None:
        branch, value = tagged
        return coerce(value, branch, defs, depth + 1)
    if isinstance(value, dict) and all(_tag_of(b) is not None for b in resolved):
        return value  # an intent union needs the intent's name: no branch is guessed from its fields
    candidates = [coerce(value, b, defs, depth + 1) for b in resolved]
    for candidate, branch in zip(candidates, resolved, strict=True):
        if candidate == value and fits(candidate, branch, defs):
            return candidate  # prefer a branch that takes the value as it is
    for candidate, branch in zip(candidates, resolved, strict=True):
        if fits(candidate, branch, defs):
            return candidate
    return value


def _tag_of(branch: Schema) -> str | None:
    const = member(member(branch.get("properties"), "intent"), "const")
    return const if isinstance(const, str) else None


def member(mapping: object, key: str) -> object:
    """`mapping[key]` when `mapping` is a dict holding it, else None: for walking untyped schemas."""
    return cast(dict[str, object], mapping).get(key) if isinstance(mapping, dict) else None


def _pick_tagged(value: JsonValue, branches: list[Schema]) -> tuple[Schema, JsonValue] | None:
    """The branch an intent name selects (case, dash and underscore insensitive), with the value."""
    tags = {norm(tag): b for b in branches if (tag := _tag_of(b)) is not None}
    if not tags or not isinstance(value, dict):
        return None
    named = value.get("intent")
    if isinstance(named, str) and norm(named) in tags:
        branch = tags[norm(named)]
        return branch, {**value, "intent": _tag_of(branch)}
    if len(value) == 1:
        # {"deploy_backend": {"tag": ...}}: the name as the only key.
        [(key, inner)] = value.items()
        if norm(key) in tags and isinstance(inner, dict | None):
            branch = tags[norm(key)]
            return branch, {**(inner or {}), "intent": _tag_of(branch)}
    return None


def _json_or_none(text: str) -> JsonValue:
    try:
        return cast(JsonValue, json.loads(text))
    except ValueError:
        return None


def fits(value: JsonValue, schema: Schema | bool, defs: Schema, depth: int = 0) -> bool:
    """Whether `value` satisfies `schema` (the JSON Schema subset pydantic emits, plus bounds)."""
    if depth > _MAX_DEPTH or not (isinstance(schema, Mapping) and asserts_hold(value, schema)):
        return depth <= _MAX_DEPTH and schema is True
    schema = resolve(schema, defs)
    if "not" in schema or not asserts_hold(value, schema):
        return False  # `not` only comes from `false` schemas here: nothing fits them
    branches = _branches(schema)
    if branches is not None:
        return any(fits(value, b, defs, depth + 1) for b in branches)
    if "const" in schema or "enum" in schema:
        options = [schema["const"]] if "const" in schema else list(schema["enum"])
        return any(value == o and type(value) is type(o) for o in options)
    types = _types(schema)
    if types and _kind(value, types) not in types or not _within_bounds(value, schema):
        return False
    if isinstance(value, list):
        items = cast(Schema, schema.get("items") or {})
        return all(fits(v, items, defs, depth + 1) for v in value)
    if isinstance(value, dict):
        return _fits_object(value, schema, defs, depth)
    return True


def _kind(value: JsonValue, types: set[str]) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    kind = _json_type(value)
    return "number" if kind == "integer" and "number" in types else kind


def _fits_object(value: dict[str, JsonValue], schema: Schema, defs: Schema, depth: int) -> bool:
    properties = cast(Mapping[str, Schema], schema.get("properties") or {})
    if any(name not in value for name in schema.get("required", ())):
        return False
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None:
            if extra is False:
                return False
            sub = cast(Schema, extra) if isinstance(extra, dict) else cast(Schema, {})
        if not fits(item, sub, defs, depth + 1):
            return False
    return True


def _within_bounds(value: JsonValue, schema: Schema) -> bool:
    """The standard validation keywords beyond types: pattern, lengths, item counts, ranges."""
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, value):
            return False
        return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    if isinstance(value, list):
        return schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        low_x, high_x = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (low_x is None or value > low_x)
            and (high_x is None or value < high_x)
        )
    return True


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # a pattern Python cannot read is not the model's fault
