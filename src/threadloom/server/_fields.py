"""A call's arguments as form fields, typed by its tool's JSON schema (or by the values when no tool is known), and read back.

A string is a text input, an integer or a number a numeric one, a `Literal` or enum a select, a
bool true / false; anything else (lists, objects, unions) is edited as JSON. What a person types
is read back into the type the field shows, or refused in words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal, cast

from pydantic import JsonValue

__all__ = ["ArgumentField", "FieldKind", "FormError", "fields_of", "read_value"]

FieldKind = Literal["text", "integer", "number", "boolean", "choice", "json"]


class FormError(Exception):
    """An answer that cannot be read (a field that is not a number, a missing choice): the message is for people."""


@dataclass(frozen=True, slots=True)
class ArgumentField:
    """One argument of a call waiting for approval, as a form field typed by the tool's schema."""

    name: str
    """The argument's name."""
    kind: FieldKind
    """Which input shows it."""
    value: str
    """The current value as the input holds it (JSON for `json` fields)."""
    original: JsonValue
    """The value the model chose."""
    _: KW_ONLY
    choices: tuple[str, ...] = ()
    """The allowed values, for `choice` fields."""
    description: str = ""
    """What the tool's docstring says of it."""
    nullable: bool = False
    """An empty input means null."""
    secret: bool = False
    """Shown as `[REDACTED]`, never its value; kept unless the person types another."""


def fields_of(
    values: Mapping[str, JsonValue], schema: Mapping[str, Any], secret: Callable[[str, JsonValue], bool]
) -> tuple[ArgumentField, ...]:
    """One field per argument the call has, then per parameter it left out; typed by the schema, else by the value."""
    properties = cast(dict[str, Any], schema.get("properties") or {})
    definitions = cast(dict[str, Any], schema.get("$defs") or {})
    names = [*values, *(name for name in properties if name not in values)]
    fields: list[ArgumentField] = []
    for name in names:
        spec = _resolve(properties.get(name) or {}, definitions)
        value = values.get(name, spec.get("default"))
        kind, choices, nullable = _kind(spec, value)
        shown = "" if value is None else value if isinstance(value, str) and kind != "json" else json.dumps(value)
        if kind == "boolean":
            shown = "true" if value is True else "false"
        fields.append(
            ArgumentField(
                name,
                kind,
                shown,
                value,
                choices=choices,
                description=str(spec.get("description") or ""),
                nullable=nullable,
                secret=secret(name, value),
            )
        )
    return tuple(fields)


def _resolve(spec: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """A property's schema with `$ref` followed and `Optional` (`anyOf` with null) unwrapped; `nullable` marks the latter."""
    ref = spec.get("$ref")
    resolved = dict(spec)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved = {
            **definitions.get(ref.removeprefix("#/$defs/"), {}),
            **{k: v for k, v in spec.items() if k != "$ref"},
        }
    options = resolved.get("anyOf")
    if isinstance(options, list):
        options = cast(list[dict[str, Any]], options)
        kept = [_resolve(o, definitions) for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = {**kept[0], **{k: v for k, v in resolved.items() if k != "anyOf"}}
            return {**merged, "nullable": len(kept) < len(options)}
    return resolved


def _kind(spec: Mapping[str, Any], value: JsonValue) -> tuple[FieldKind, tuple[str, ...], bool]:
    nullable = bool(spec.get("nullable"))
    enum = spec.get("enum")
    if isinstance(enum, list) and all(isinstance(v, str) for v in cast(list[Any], enum)):
        return "choice", tuple(cast(list[str], enum)), nullable
    kinds: dict[str, FieldKind] = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}
    declared = spec.get("type")
    if isinstance(declared, str) and declared in kinds:
        return kinds[declared], (), nullable
    if spec:  # arrays, objects, unions: edited as JSON
        return "json", (), nullable
    # No schema (the runtime does not know the agent): the value's own type decides.
    if isinstance(value, bool):
        return "boolean", (), False
    if isinstance(value, int):
        return "integer", (), False
    if isinstance(value, float):
        return "number", (), False
    return ("text", (), False) if isinstance(value, str) else ("json", (), True)


def read_value(item: ArgumentField, raw: str) -> JsonValue:
    """What `raw`, typed into `item`'s input, means; a field left as it was shown means its original value.

    Raises:
        FormError: It is not what the field's type needs (the message names the field).
    """
    text = raw.strip()
    if item.nullable and not text and item.kind != "text":
        return None
    try:
        match item.kind:
            case "text":
                # A browser sends a textarea's line breaks as CRLF (HTML's form encoding): the same text.
                typed = raw.replace("\r\n", "\n")
                if isinstance(item.original, str) and typed == item.original.replace("\r\n", "\n"):
                    return item.original
                return None if not typed and item.original is None else typed  # an empty field for a null: unchanged
            case "integer":
                return int(text)
            case "number":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError(text)
                return number
            case "boolean":
                if text not in ("true", "false"):
                    raise ValueError(text)
                return text == "true"
            case "choice":
                if text not in item.choices:
                    raise ValueError(text)
                return text
            case "json":
                return cast(JsonValue, json.loads(text))
    except ValueError:
        wanted = {
            "integer": "a whole number",
            "number": "a number",
            "boolean": "true or false",
            "choice": "one of " + ", ".join(item.choices),
            "json": "JSON",
            "text": "text",
        }[item.kind]
        raise FormError(f"{item.name}: {text[:80]!r} is not {wanted}") from None
