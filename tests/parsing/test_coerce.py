from typing import Any

import pytest
from pydantic import JsonValue

from threadloom.parsing._coerce import coerce, fits, norm, resolve

TAGGED: dict[str, Any] = {
    "anyOf": [
        {"type": "object", "properties": {"intent": {"const": "deploy"}, "tag": {"type": "string"}}},
        {"type": "object", "properties": {"intent": {"const": "done"}, "message": {"type": "string"}}},
    ]
}


def test_norm_and_resolve() -> None:
    assert norm("Deploy-Backend now") == "deploybackendnow"
    defs: dict[str, Any] = {"A": {"type": "integer"}}
    assert resolve({"$ref": "#/$defs/A"}, defs) == {"type": "integer"}
    assert resolve(True, defs) == {} and resolve(False, defs) == {"not": {}}


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("42", {"type": "integer"}, 42),
        ("1,200", {"type": "integer"}, 1200),
        ("2.5", {"type": "number"}, 2.5),
        ("3.0", {"type": "integer"}, 3),
        ("No", {"type": "boolean"}, False),
        (1, {"type": "boolean"}, True),
        (7, {"type": "string"}, "7"),
        ("null", {"type": ["string", "null"]}, None),
        ("x", {"type": "array", "items": {"type": "string"}}, ["x"]),
        ('["a"]', {"type": "array", "items": {"type": "string"}}, ["a"]),
        (5, {"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 5}),
        ({"Tag-Name": "v1"}, {"type": "object", "properties": {"tag_name": {"type": "string"}}}, {"tag_name": "v1"}),
        ("PRODUCTION", {"enum": ["staging", "production"]}, "production"),
    ],
)
def test_coerce(value: JsonValue, schema: dict[str, Any], expected: JsonValue) -> None:
    assert coerce(value, schema, {}) == expected


def test_union_branches_are_picked_by_intent_name_only() -> None:
    assert coerce({"intent": "DONE", "message": "ok"}, TAGGED, {}) == {"intent": "done", "message": "ok"}
    assert coerce({"done": {"message": "ok"}}, TAGGED, {}) == {"message": "ok", "intent": "done"}
    assert coerce({"message": "ok"}, TAGGED, {}) == {"message": "ok"}  # no name, no guess


def test_fits_checks_types_required_and_bounds() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"type": "string", "pattern": "^a"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    assert fits({"n": 1, "s": "abc"}, schema, {})
    assert not fits({"n": 0}, schema, {})
    assert not fits({"s": "abc"}, schema, {})
    assert not fits({"n": 1, "s": "b"}, schema, {})
    assert not fits({"n": 1, "x": 1}, schema, {})
    assert not fits(True, {"type": "integer"}, {})
    assert fits(1, {"type": "number"}, {})
