"""Input schemas the converter cannot use as they stand: each still makes a tool, and none breaks another."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as mt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from pydantic import JsonValue, ValidationError

from test_mcp import echo_server
from threadloom import Agent
from threadloom.mcp import MCPServer, mcp_tools
from threadloom.mcp._schema import SchemaConverter
from threadloom.mcp._tools import build_tool
from threadloom.models import ScriptedModel


def nested(depth: int) -> tuple[dict[str, Any], JsonValue]:
    """An object schema `depth` objects deep, and a value of it."""
    schema: dict[str, Any] = {"type": "string"}
    value: JsonValue = "leaf"
    for _ in range(depth):
        schema, value = {"type": "object", "properties": {"x": schema}, "required": ["x"]}, {"x": value}
    return schema, value


DEEP_SCHEMA, DEEP_VALUE = nested(60)
ODD: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (properties + required, arguments that reach the server as they are)
    "required_int": ({"properties": {"a": {"type": "string"}}, "required": 5}, {}),
    "required_str": ({"properties": {"abc": {"type": "string"}, "a": {"type": "string"}}, "required": "abc"}, {}),
    "multiple_of_0": ({"properties": {"n": {"type": "number", "multipleOf": 0}}}, {"n": 1.5}),
    "negative_length": ({"properties": {"s": {"type": "string", "minLength": -1}}}, {"s": ""}),
    "fractional_length": ({"properties": {"s": {"type": "string", "maxLength": 3.5}}}, {"s": "abcd"}),
    "boolean_bound": ({"properties": {"n": {"type": "integer", "minimum": True}}}, {"n": 0}),
    "deep": ({"properties": {"d": DEEP_SCHEMA}, "required": ["d"]}, {"d": DEEP_VALUE}),
}  # fmt: skip
GOOD = {"properties": {"a": {"type": "string"}}, "required": ["a"]}


async def test_an_odd_schema_still_makes_a_tool_and_breaks_no_other() -> None:
    async with MCPServer(Client(echo_server({**{n: s for n, (s, _) in ODD.items()}, "good": GOOD}))) as server:
        tools = {t.name: t for t in await mcp_tools(server, default_policy="auto")}
        Agent(name="a", model=ScriptedModel([]), tools=list(tools.values()))  # the schema the model sees builds
        for name, (_, sent) in ODD.items():
            assert await tools[name].invoke(sent) == sent, name
        with pytest.raises(ValidationError):  # the good tool keeps its checks
            tools["good"].arguments.model_validate({})
    # Only a list of names says what is required; a bound that is no bound is left out.
    assert "required" not in tools["required_str"].arguments.model_json_schema()
    assert "maxLength" not in str(tools["fractional_length"].arguments.model_json_schema())


async def test_a_tool_whose_schema_fails_to_convert_takes_any_values_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    type_of = SchemaConverter.type_of

    def failing(self: SchemaConverter, schema: Any, name: str) -> Any:
        if self.owner == "Bad":
            raise RecursionError("maximum recursion depth exceeded")
        return type_of(self, schema, name)

    monkeypatch.setattr(SchemaConverter, "type_of", failing)
    async with MCPServer(Client(echo_server({"bad": GOOD, "good": GOOD}))) as server:
        with caplog.at_level(logging.WARNING, logger="threadloom.mcp"):
            bad, good = await mcp_tools(server, default_policy="auto")
        Agent(name="a", model=ScriptedModel([]), tools=[bad, good])
        # Its properties stay, and what they hold is for the server to judge.
        assert await bad.invoke({"a": [1, None]}) == {"a": [1, None]}
        assert set(bad.intent.model_json_schema()["properties"]) == {"a", "intent"}
        with pytest.raises(ValidationError):
            bad.arguments.model_validate({})  # still required
        with pytest.raises(ValidationError):
            good.arguments.model_validate({"a": [1]})
    [record] = caplog.records
    assert "'bad'" in record.getMessage() and "RecursionError" in record.getMessage()


KEYWORDS = st.sampled_from(
    ["type", "properties", "required", "items", "anyOf", "oneOf", "allOf", "enum", "const", "$ref", "$defs",
     "minimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "additionalProperties",
     "default", "writeOnly", "format", "description", "a", "from", "intent"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["object", "string", "integer", "number", "array", "null", "password", "#", "#/$defs/a"]),
)
JSON_OBJECTS = st.recursive(
    st.dictionaries(KEYWORDS, SCALARS, max_size=4),
    lambda inner: st.dictionaries(
        KEYWORDS, st.one_of(SCALARS, inner, st.lists(inner | SCALARS, max_size=3)), max_size=5
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(JSON_OBJECTS)
def test_any_json_object_as_an_input_schema_makes_a_tool(schema: dict[str, Any]) -> None:
    model = SchemaConverter(schema, "Case").model(schema, "Case")  # the converter itself copes
    model.model_json_schema()
    server = MCPServer(Client(echo_server({})))
    tool = build_tool(server, mt.Tool(name="case", input_schema=schema), "case", "auto")
    Agent(name="a", model=ScriptedModel([]), tools=[tool])
