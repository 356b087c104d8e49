"""Input schemas the converter cannot use as they stand: each still makes a tool, and none breaks another."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import mcp_types as mt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from pydantic import JsonValue, ValidationError

from test_mcp import echo_server
from threadloom import Agent, Thread
from threadloom.mcp import MCPServer, mcp_tools
from threadloom.mcp._schema import SchemaConverter, secret_properties
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


_T = TypeVar("_T")


def within(seconds: float, work: Callable[[], _T]) -> _T:
    """`work()`, failing the test (not hanging it) if it takes longer than `seconds`."""
    out: list[_T] = []
    worker = threading.Thread(target=lambda: out.append(work()), daemon=True)  # abandoned if it never ends
    worker.start()
    worker.join(seconds)
    assert out, f"did not finish within {seconds} s (or raised)"
    return out[0]


PIN = {"type": "string", "writeOnly": True}
PASSWORD = {"type": "string", "format": "password"}
NESTED_SECRETS = {
    "$defs": {"Login": {"type": "object", "properties": {"pin": PIN, "who": {"type": "string"}}}},
    "properties": {
        "user": {"type": "string"},
        "login": {"type": "object", "properties": {"code": PASSWORD, "who": {"type": "string"}}},
        "badges": {"type": "array", "items": PASSWORD},
        "saved": {"$ref": "#/$defs/Login"},
        "maybe": {"anyOf": [PASSWORD, {"type": "null"}]},
    },
}
NESTED_ARGUMENTS = {
    "user": "ada",
    "login": {"code": "code-4711", "who": "ada-login"},
    "badges": ["badge-0815"],
    "saved": {"pin": "pin-123456", "who": "ada-saved"},
    "maybe": "maybe-424242",
}


async def test_a_secret_nested_at_any_depth_is_hidden_wherever_the_thread_is_rendered() -> None:
    reserved = {"properties": {"intent": PASSWORD}}  # recorded as `intent_`, the intent's own field being `intent`
    async with MCPServer(Client(echo_server({"sign_in": NESTED_SECRETS, "odd": reserved}))) as server:
        sign_in, odd = await mcp_tools(server, default_policy="auto")
        assert odd.secret_fields == {"intent", "intent_"}
        assert sign_in.secret_fields == {"code", "badges", "pin", "maybe"}
        call = json.dumps({"intent": "sign_in", **NESTED_ARGUMENTS})
        agent = Agent(
            name="a", model=ScriptedModel([call, '{"intent": "done_for_now", "message": "in"}']), tools=[sign_in]
        )
        thread = await agent.run(Thread.start("user_input", {"text": "sign in"}))
    [response] = [e for e in thread.events if e.type == "tool_response"]
    assert cast(dict[str, Any], response.data)["result"] == NESTED_ARGUMENTS  # the server got every value
    shown = str(agent.render(thread))
    for secret in ("code-4711", "badge-0815", "pin-123456", "maybe-424242"):
        assert secret not in shown
    assert "ada-login" in shown and "ada-saved" in shown  # what is not secret stays


def chain(length: int) -> dict[str, Any]:
    """`$defs` where each of two properties refers to the next definition, and the last holds a secret."""
    defs: dict[str, Any] = {f"D{i}": {"type": "object", "properties": {"x": {"$ref": f"#/$defs/D{i + 1}"},
                                                                     "y": {"$ref": f"#/$defs/D{i + 1}"}}}
                            for i in range(length)}  # fmt: skip
    defs[f"D{length}"] = {"type": "object", "properties": {"pin": PIN}}
    return {"$defs": defs, "properties": {"d": {"$ref": "#/$defs/D0"}}}


def deep_secret(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {"pin": PIN}}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return {"properties": {"d": schema}}


SELF_REFERENCE = {
    "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}, "pin": PIN}}},
    "properties": {"root": {"$ref": "#/$defs/Node"}},
}
MUTUAL = {  # A is a secret or a list of B; B is a list of A: a value of B holds secrets only through the cycle
    "$defs": {
        "A": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/B"}}, PASSWORD]},
        "B": {"type": "array", "items": {"$ref": "#/$defs/A"}},
    },
    "properties": {"b": {"$ref": "#/$defs/B"}, "b2": {"$ref": "#/$defs/B"}, "plain": {"$ref": "#/$defs/Plain"}},
}
RECURSIVE_PLAIN = {
    "$defs": {"P": {"type": "array", "items": {"$ref": "#/$defs/P"}}},
    "properties": {"p": {"$ref": "#/$defs/P"}},
}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (SELF_REFERENCE, {"pin"}),
        (MUTUAL, {"b", "b2"}),
        (RECURSIVE_PLAIN, set[str]()),
        ({"properties": {"env": {"type": "object", "patternProperties": {"^S_": PASSWORD}}}}, {"env"}),
        (chain(40), {"pin"}),  # 2**40 paths, each definition looked at once
        (deep_secret(5000), {"pin"}),  # looked at without recursion: no RecursionError at any depth
    ],
)
def test_secrets_are_found_through_reference_cycles_and_shared_definitions_in_bounded_time(
    schema: dict[str, Any], expected: set[str]
) -> None:
    assert within(10, lambda: secret_properties(schema)) == expected
