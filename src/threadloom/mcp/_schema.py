"""JSON Schema (an MCP tool's `inputSchema`) to pydantic fields, for the common shapes.

Objects with properties become models; string, number, integer, boolean, null, arrays, maps,
enums, consts, `anyOf` / `oneOf`, type lists and local `$ref`s map to their Python types, with
descriptions, defaults and the simple numeric and length bounds. Whatever cannot be expressed (a
recursive reference, `allOf` of several schemas, tuples, objects nested deeper than `MAX_DEPTH`)
becomes a permissive `JsonValue` field: the model may send anything there and the server, which
holds the real schema, judges it. A keyword with a value it cannot have (`required: 5`, a negative
length) is ignored.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
)

from ._nulls import keep_given_nulls, left_out, left_out_unless_given

__all__ = ["MAX_DEPTH", "ArgumentsBase", "Fields", "SchemaConverter", "camel", "secret_properties"]

Schema = Mapping[str, Any]
Fields = dict[str, Any]

MAX_DEPTH = 16
"""Schemas nested deeper than this (objects in arrays in objects...) take any JSON value below it."""

_SCALARS = (str, int, float, bool, type(None))
# JSON Schema's bound -> pydantic's constraint, and which values the bound can have.
_NUMBER_BOUNDS = {
    "minimum": ("ge", "number"),
    "maximum": ("le", "number"),
    "exclusiveMinimum": ("gt", "number"),
    "exclusiveMaximum": ("lt", "number"),
    "multipleOf": ("multiple_of", "positive"),
}
_LENGTH_BOUNDS = {"minLength": ("min_length", "count"), "maxLength": ("max_length", "count")}
_ITEM_BOUNDS = {"minItems": ("min_length", "count"), "maxItems": ("max_length", "count")}
_PRIMITIVES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": None}


class ArgumentsBase(BaseModel):
    """Base of the models built from a schema: known by the server's names, dumped under them."""

    # Fields whose names Python cannot use carry the server's name as an alias; the model sees
    # the alias, the thread records it, and the server gets it back.
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    @model_serializer(mode="wrap")
    def _given_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> object:
        return keep_given_nulls(self, handler(self), info)


def camel(name: str) -> str:
    """`schedule_maintenance` -> `ScheduleMaintenance`, for model names."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part) or "Model"


class SchemaConverter:
    """Converts one tool's input schema; resolves `$ref`s against its `$defs` / `definitions`."""

    def __init__(self, root: Schema, owner: str) -> None:
        self.root = root
        self.owner = owner
        self.renames: dict[str, str] = {}
        """Field name -> property name, for reserved properties that could keep no alias."""
        self._models: dict[str, Any] = {}
        self._resolving: set[str] = set()
        self._depth = 0

    def fields(self, schema: Schema, *, reserved: frozenset[str] = frozenset[str](), loose: bool = False) -> Fields:
        """The fields of an object schema: required ones without a default, optional ones with one.

        An optional property without a default is `T | None = None`, and left out of the call
        when it is None, so the server applies its own default; where its schema allows null, a
        null the call gave is sent (see `_nulls`).

        Args:
            schema: An object schema (`properties`, `required`).
            reserved: Property names that cannot be field names or aliases here (`intent`).
            loose: Make every property a `JsonValue` field (for a schema the converter failed on).
        """
        listed = schema.get("required")
        required = (
            {n for n in cast(list[object], listed) if isinstance(n, str)} if isinstance(listed, list) else set[str]()
        )
        fields: Fields = {}
        for prop, value in _schema(schema.get("properties")).items():
            sub = _schema(value)
            hint = JsonValue if loose else self.type_of(sub, f"{self.owner}_{prop}")
            kwargs: dict[str, Any] = {}
            description = sub.get("description") or self._ref_target(sub).get("description")
            if isinstance(description, str):
                kwargs["description"] = description
            if isinstance(sub.get("examples"), list):
                kwargs["examples"] = sub["examples"]
            name = _field_name(prop, fields, reserved)
            if prop in reserved:
                self.renames[name] = prop
            elif name != prop:
                kwargs["alias"] = prop
            if prop in required:
                fields[name] = (hint, Field(**kwargs))
            elif "default" in sub:
                default = sub["default"]
                fields[name] = (Optional[hint] if default is None else hint, Field(default=default, **kwargs))  # noqa: UP045 - built at run time
            else:
                if allows_null(sub, self.root):
                    # No `default` shown: the parser would fill it in, and a null left out would look given.
                    kwargs.update(exclude_if=left_out_unless_given, json_schema_extra=_no_default)
                else:
                    kwargs["exclude_if"] = left_out
                fields[name] = (Optional[hint], Field(default=None, **kwargs))  # noqa: UP045 - built at run time
        return fields

    def model(self, schema: Schema, name: str) -> type[BaseModel]:
        """A pydantic model for an object schema with properties."""
        doc = schema.get("description")
        return create_model(
            camel(name), __base__=ArgumentsBase, __doc__=doc if isinstance(doc, str) else None, **self.fields(schema)
        )

    def type_of(self, schema: Schema, name: str) -> Any:
        """The Python type for one schema; `JsonValue` where it cannot say more (or below `MAX_DEPTH`)."""
        if self._depth >= MAX_DEPTH:
            return JsonValue
        self._depth += 1
        try:
            return self._type_of(schema, name)
        finally:
            self._depth -= 1

    def _type_of(self, schema: Schema, name: str) -> Any:
        if "$ref" in schema:
            return self._ref(str(schema["$ref"]))
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return self._union([self.type_of(s, f"{name}_{i}") for i, s in enumerate(schema[key])])
        if isinstance(schema.get("allOf"), list):
            parts = schema["allOf"]
            # pydantic wraps a described `$ref` as a one-item allOf; more than one is an intersection.
            return self.type_of(parts[0], name) if len(parts) == 1 else JsonValue
        if "const" in schema:
            return Literal[schema["const"]] if isinstance(schema["const"], _SCALARS) else JsonValue
        if isinstance(schema.get("enum"), list):
            values = schema["enum"]
            if values and all(isinstance(v, _SCALARS) for v in values):
                return Literal[tuple(values)]  # a literal built at run time
            return JsonValue
        kind = schema.get("type")
        if kind is None and "properties" in schema:
            kind = "object"
        if isinstance(kind, list):
            return self._union([self.type_of({**schema, "type": k}, name) for k in cast(list[object], kind)])
        return self._typed(schema, kind, name)

    def _typed(self, schema: Schema, kind: object, name: str) -> Any:
        if kind == "object":
            if isinstance(schema.get("properties"), Mapping) and schema["properties"]:
                return self.model(schema, name)
            # A map: `additionalProperties` types its values (absent, `true` or `{}` allow any).
            return dict[str, self.type_of(_schema(schema.get("additionalProperties")), name)]
        if kind == "array":
            item = self.type_of(_schema(schema.get("items")), f"{name}_item")
            return _bounded(list[item], schema, _ITEM_BOUNDS)
        if kind in ("integer", "number"):
            return _bounded(_PRIMITIVES[kind], schema, _NUMBER_BOUNDS)
        if kind == "string":
            return _bounded(str, schema, _LENGTH_BOUNDS)
        if kind in ("boolean", "null"):
            return _PRIMITIVES[kind]
        return JsonValue

    def _ref_target(self, schema: Schema) -> Schema:
        ref = schema.get("$ref")
        return _resolve(self.root, ref) if isinstance(ref, str) else {}

    def _ref(self, ref: str) -> Any:
        if ref in self._models:
            return self._models[ref]
        target = self._ref_target({"$ref": ref})
        if not target or ref in self._resolving:
            return JsonValue  # a remote or recursive reference: the server validates it
        self._resolving.add(ref)
        try:
            made = self.type_of(target, f"{self.owner}_{ref.rsplit('/', 1)[-1]}")
        finally:
            self._resolving.discard(ref)
        self._models[ref] = made
        return made

    def _union(self, members: list[Any]) -> Any:
        if not members or any(m is JsonValue for m in members):
            return JsonValue
        unique = list(dict.fromkeys(members))
        return unique[0] if len(unique) == 1 else Union[tuple(unique)]  # noqa: UP007 - a runtime-built union


def secret_properties(schema: Schema) -> frozenset[str]:
    """The keys under which a tool's arguments hold a secret, at any depth, as a `SecretStr` field's are.

    A property is secret when its schema is marked (`writeOnly`, or `format: password`, as pydantic
    writes a `SecretStr`), or holds a marked one under no key of its own: as array items, a map's
    values (`additionalProperties`, `patternProperties`), a member of `anyOf` / `oneOf` / `allOf`,
    or through a `$ref`. The properties of nested
    objects (and of the definitions referred to) count under their own names. Redaction hides the
    values under these keys wherever the thread is rendered.

    Each subschema and each definition is looked at once, without recursion, so reference cycles
    and shared definitions cost no more than the schema is long.
    """
    nodes, targets = _reachable(schema)
    secret_refs: set[str] = set()
    while True:  # a reference is secret when its target holds one; grows to a fixpoint, so cycles end
        more = {ref for ref, target in targets.items() if ref not in secret_refs and _holds(target, secret_refs)}
        if not more:
            break
        secret_refs |= more
    return frozenset(
        prop
        for node in nodes
        for prop, sub in _schema(node.get("properties")).items()
        if _holds(_schema(sub), secret_refs)
    )


def _reachable(root: Schema) -> tuple[list[Schema], dict[str, Schema]]:
    """Every subschema reachable from `root` (through `$ref`s too), and each local reference's target."""
    nodes: list[Schema] = []
    targets: dict[str, Schema] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in targets:
            targets[ref] = _resolve(root, ref)
            stack.append(targets[ref])
        stack.extend(_parts(node, keyed=True))
    return nodes, targets


def _holds(schema: Schema, secret_refs: set[str]) -> bool:
    """Whether a value of `schema` is a secret, or holds one under no key of its own."""
    stack = [schema]
    while stack:
        node = stack.pop()
        ref = node.get("$ref")
        if (
            node.get("writeOnly") is True
            or node.get("format") == "password"
            or (isinstance(ref, str) and ref in secret_refs)
        ):
            return True
        stack.extend(_parts(node, keyed=False))
    return False


def _parts(schema: Schema, *, keyed: bool) -> list[Schema]:
    """The subschemas of `schema` a value of it may hold: under no key, and (if `keyed`) under property names."""
    parts: list[object] = [schema.get("additionalProperties"), *_schema(schema.get("patternProperties")).values()]
    for key in ("items", "prefixItems", "anyOf", "oneOf", "allOf"):
        value = schema.get(key)
        parts.extend(cast(list[object], value) if isinstance(value, list) else [value])
    if keyed:
        parts.extend(_schema(schema.get("properties")).values())
    return [cast(Schema, part) for part in parts if isinstance(part, Mapping)]


def allows_null(schema: Schema, root: Schema) -> bool:
    """Whether `schema` says null is a value, so that a null the model gives is sent.

    It does with `type: "null"` or `"null"` in a type list, a null `const` or `enum` entry, or so
    in an `anyOf` / `oneOf` member or behind a `$ref`. An untyped schema does not say so.
    """
    stack, seen = [schema], set[str]()
    while stack:
        node = stack.pop()
        kind, enum = node.get("type"), node.get("enum")
        if kind == "null" or (isinstance(kind, list) and "null" in kind) or ("const" in node and node["const"] is None):
            return True
        if isinstance(enum, list) and None in enum:
            return True
        for key in ("anyOf", "oneOf", "allOf"):
            members = node.get(key)
            if isinstance(members, list) and (key != "allOf" or len(cast(list[object], members)) == 1):
                stack.extend(_schema(m) for m in cast(list[object], members))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            stack.append(_resolve(root, ref))
    return False


def _no_default(schema: dict[str, JsonValue]) -> None:
    schema.pop("default", None)


def _resolve(root: Schema, ref: str) -> Schema:
    """The target of a local reference (`#/$defs/Window`) in `root`; the empty schema for any other."""
    if not ref.startswith("#/"):
        return {}
    node: Schema = root
    for part in ref[2:].split("/"):
        node = _schema(node.get(part.replace("~1", "/").replace("~0", "~")))
    return node


def _bounded(hint: Any, schema: Schema, bounds: Mapping[str, tuple[str, str]]) -> Any:
    """`hint` with the schema's bounds as pydantic constraints (`minimum` -> `ge`, ...).

    A bound that is no bound (`multipleOf: 0`, `minLength: -1`, `maxLength: 3.5`) is left out:
    the server, which wrote it, judges the value.
    """
    constraints = {ours: schema[theirs] for theirs, (ours, kind) in bounds.items() if _valid(schema.get(theirs), kind)}
    return Annotated[hint, Field(**constraints)] if constraints else hint


def _valid(bound: object, kind: str) -> bool:
    """Whether `bound` is a `kind` of bound: a finite number, a positive one, or a count."""
    if not isinstance(bound, int | float) or isinstance(bound, bool) or not math.isfinite(bound):
        return False
    if kind == "count":
        return isinstance(bound, int) and bound >= 0
    return bound > 0 if kind == "positive" else True


def _schema(value: object) -> Schema:
    """`value` if it is a (sub)schema object, else the empty schema (which allows anything)."""
    return cast(Schema, value) if isinstance(value, Mapping) else {}


_TAKEN = frozenset(dir(BaseModel))


def _field_name(prop: str, fields: Fields, reserved: frozenset[str]) -> str:
    """A Python field name for a property: itself when it can be, else a cleaned-up spelling."""
    name = re.sub(r"\W", "_", prop)
    if not name or name[0].isdigit() or name.startswith("_"):
        name = f"f_{name.lstrip('_')}"
    if keyword.iskeyword(name) or name in _TAKEN or name.startswith("model_") or prop in reserved:
        name = f"{name}_"
    base, n = name, 2
    while name in fields:
        name, n = f"{base}_{n}", n + 1
    return name
