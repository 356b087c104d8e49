from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Intent, ParseError, parse
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
        ("-1,234,567.5", {"type": "number"}, -1234567.5),
        ("1,5", {"type": "integer"}, "1,5"),  # a comma is a thousands separator or not a number
        ("1,5", {"type": "number"}, "1,5"),
        ("0,25", {"type": "number"}, "0,25"),
        ("12,34,567", {"type": "integer"}, "12,34,567"),
        ("1,2345", {"type": "number"}, "1,2345"),
        (",5", {"type": "integer"}, ",5"),  # no digit before the comma: not 5
        (",5", {"type": "number"}, ",5"),
        ("about 3,5 replicas", {"type": "number"}, "about 3,5 replicas"),  # a decimal comma in text: not 3 or 5
        ("scale to 3, then 5", {"type": "integer"}, "scale to 3, then 5"),  # two numbers: no answer
        ("roughly 1,200 rows", {"type": "integer"}, 1200),
        ("about 1,2345 rows", {"type": "integer"}, "about 1,2345 rows"),
        ("e5", {"type": "number"}, "e5"),  # an exponent without a mantissa
        ("1e3", {"type": "number"}, 1000.0),
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


@given(n=st.integers(min_value=-(10**15), max_value=10**15))
def test_thousands_separators_read_as_the_number(n: int) -> None:
    assert coerce(f"{n:,}", {"type": "integer"}, {}) == n
    assert coerce(f"{n:,}.5", {"type": "number"}, {}) == float(f"{n}.5")


@given(text=st.text(alphabet="0123456789,._eE+- ", max_size=12))
def test_numeric_looking_text_is_a_number_or_left_alone(text: str) -> None:
    for schema in ({"type": "integer"}, {"type": "number"}):
        coerced = coerce(text, schema, {})
        assert coerced == text or isinstance(coerced, int | float)


class Scale(Intent):
    intent: Literal["scale"] = "scale"
    factor: float


def test_a_decimal_comma_fails_validation_instead_of_scaling_the_number() -> None:
    with pytest.raises(ParseError, match="factor"):
        parse('{"intent": "scale", "factor": "0,25"}', Scale)
    assert parse('{"intent": "scale", "factor": "1,000.5"}', Scale) == Scale(factor=1000.5)


def test_a_missing_field_is_filled_only_where_the_schema_says_what_it_means() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "must": {"type": ["string", "null"]},  # required and nullable: left out means null
            "may": {"type": ["string", "null"]},  # optional, no default: left out stays left out
            "limit": {"type": "integer", "default": 3},
        },
        "required": ["must"],
    }
    assert coerce({}, schema, {}) == {"must": None, "limit": 3}
    assert coerce({"may": None}, schema, {}) == {"may": None, "must": None, "limit": 3}


def test_a_key_that_names_a_property_exactly_is_that_property() -> None:
    # Before: `intent_` (an MCP tool's renamed `intent` property) came first and took every key that
    # folds to "intent", so the envelope's name was sent to the server as the property's value.
    renamed: dict[str, Any] = {
        "type": "object",
        "properties": {"intent_": {"type": "string"}, "tag": {"type": "string"}, "intent": {"const": "label"}},
    }
    assert coerce({"intent": "label", "tag": "t"}, renamed, {}) == {"intent": "label", "tag": "t"}
    assert coerce({"intent": "label", "intent_": "x"}, renamed, {}) == {"intent": "label", "intent_": "x"}
    both: dict[str, Any] = {
        "type": "object",
        "properties": {"page_size": {"type": "integer"}, "pageSize": {"type": "integer"}},
    }
    assert coerce({"pageSize": 2}, both, {}) == {"pageSize": 2}
    assert coerce({"PAGE-SIZE": 2}, both, {}) == {"PAGE-SIZE": 2}  # either of two: kept as written, no guess
    assert coerce({"Page-Size": 2}, {"type": "object", "properties": {"page_size": {"type": "integer"}}}, {}) == {
        "page_size": 2
    }
