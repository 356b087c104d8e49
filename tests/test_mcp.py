"""MCP tools through threadloom: a real MCP server process (tests/mcp_server.py) over stdio and HTTP."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import mcp_types as mt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from pydantic import JsonValue, ValidationError

import threadloom.mcp
from threadloom import Agent, Event, Runtime, Thread, UserError
from threadloom.mcp import (
    IDEMPOTENCY_KEY_META,
    MCPConnectionError,
    MCPServer,
    MCPTool,
    MCPToolError,
    mcp_tools,
    result_value,
    tool_name,
)
from threadloom.mcp._schema import SchemaConverter
from threadloom.models import ScriptedModel
from threadloom.state import model_record

SERVER = Path(__file__).with_name("mcp_server.py")
DEPLOY = '{"intent": "deploy_backend", "tag": "%s", "environment": "%s"}'
DONE = '{"intent": "done_for_now", "message": "done"}'


def deploys(log: Path) -> list[dict[str, str]]:
    """What the server process recorded, one line per deploy it did."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def events(thread: Thread, kind: str) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], e.data) for e in thread.events if e.type == kind]


@pytest.fixture
def deploy_log(tmp_path: Path) -> Path:
    return tmp_path / "deploys.jsonl"


def stdio(deploy_log: Path) -> MCPServer:
    """The server as a subprocess; it lists two tools a page, so every listing reads two pages."""
    env = {"DEPLOY_LOG": str(deploy_log), "MCP_PAGE_SIZE": "2"}
    return MCPServer.stdio(sys.executable, [str(SERVER), "stdio"], env=env)


@dataclass
class HTTPServer:
    url: str
    process: subprocess.Popen[str]


@pytest.fixture
def http_server(deploy_log: Path) -> Iterator[HTTPServer]:
    """The same server over streamable HTTP on 127.0.0.1, on a port the server's OS picked."""
    env = {**os.environ, "DEPLOY_LOG": str(deploy_log)}
    process = subprocess.Popen([sys.executable, str(SERVER), "http"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "the server printed no port"
        port = int(process.stdout.readline().strip().removeprefix("port="))
        deadline = time.monotonic() + 60
        while True:  # poll until the server answers: the port is known before uvicorn listens
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.02)
        yield HTTPServer(f"http://127.0.0.1:{port}/mcp", process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, deploy_log: Path) -> Callable[[], MCPServer]:
    if request.param == "stdio":
        return lambda: stdio(deploy_log)
    url = cast(HTTPServer, request.getfixturevalue("http_server")).url
    return lambda: MCPServer.http(url, headers={"X-Test": "1"})


# -- the story: an agent, two tools, one approval ----------------------------------------------


async def test_the_read_only_tool_runs_at_once_and_the_deploy_waits_for_approval(
    connect: Callable[[], MCPServer], deploy_log: Path
) -> None:
    async with connect() as server:
        tools = await mcp_tools(server)
        assert server.name == "deploys"
        assert {t.name: (t.mcp_name, t.policy, t.idempotent) for t in tools} == {
            "list_git_tags": ("list_git_tags", "auto", True),
            "deploy_backend": ("deploy_backend", "approval", False),
            "schedule_maintenance": ("scheduleMaintenance", "approval", True),
        }
        model = ScriptedModel(['{"intent": "list_git_tags", "limit": 2}', DEPLOY % ("v1.2.3", "production")])
        agent = Agent(name="deployer", model=model, tools=tools)
        thread = await agent.run(Thread.start("user_input", {"text": "ship the latest tag to production"}))

    assert thread.status == "waiting_approval"
    [listed] = events(thread, "tool_response")
    assert (listed["intent"], listed["result"]) == ("list_git_tags", {"result": ["v1.2.3", "v1.2.2"]})
    pending = thread.pending
    assert pending is not None and isinstance(pending.data, dict)
    record = model_record(pending)  # the usage of the model call that chose the deploy
    assert record is not None and record["name"] == "scripted"
    assert {key: value for key, value in pending.data.items() if key != "model"} == {
        "intent": "deploy_backend",
        "arguments": {"tag": "v1.2.3", "environment": "production"},
        "policy": "approval",
    }
    assert deploys(deploy_log) == []  # recorded, not run
    saved = thread.approve(pending.id).to_json()

    # The approval comes later, to another process: the thread is the state, so a new connection
    # and freshly listed tools run the approved call.
    async with connect() as server:
        agent = Agent(name="deployer", model=ScriptedModel([DONE]), tools=await mcp_tools(server))
        thread = await agent.run(Thread.from_json(saved))
        assert thread.status == "done"
        assert events(thread, "tool_response")[-1] == {
            "call_id": pending.id,
            "intent": "deploy_backend",
            "result": {"result": "deployed v1.2.3 to production"},
        }
        assert await agent.run(thread) == thread  # nothing left to do
    assert deploys(deploy_log) == [{"tag": "v1.2.3", "environment": "production"}]


async def test_through_the_runtime_an_edited_approval_reaches_the_server(tmp_path: Path, deploy_log: Path) -> None:
    async with stdio(deploy_log) as server:
        model = ScriptedModel([DEPLOY % ("v1.2.3", "production"), DONE])
        agent = Agent(name="deployer", model=model, tools=await mcp_tools(server))
        runtime = Runtime(store=f"sqlite:///{tmp_path}/threads.db", agents=[agent])
        thread_id = await runtime.launch("deployer", Event("slack_message", {"text": "ship v1.2.3"}))
        await runtime.run_until_idle()
        pending = (await runtime.get(thread_id)).pending
        assert pending is not None and deploys(deploy_log) == []

        await runtime.approve(thread_id, pending.id, edits={"environment": "staging"})  # "not prod, please"
        await runtime.run_until_idle()
        assert (await runtime.get(thread_id)).status == "done"
        await runtime.aclose()
    assert deploys(deploy_log) == [{"tag": "v1.2.3", "environment": "staging"}]


async def test_a_server_side_error_becomes_a_compact_error_event(deploy_log: Path) -> None:
    async with stdio(deploy_log) as server:
        tools = await mcp_tools(server, policies={"deploy_backend": "auto"})
        model = ScriptedModel([DEPLOY % ("v9.9.9", "staging"), DEPLOY % ("v1.2.2", "staging"), DONE])
        thread = await Agent(name="deployer", model=model, tools=tools).run(Thread.start("user_input", {"text": "go"}))
    [error] = events(thread, "error")
    assert error["source"] == "tool" and error["intent"] == "deploy_backend" and error["error_type"] == "MCPToolError"
    assert error["message"] == (
        "MCPToolError: Error executing tool deploy_backend: no such tag 'v9.9.9'; "
        "the tags are v1.2.3, v1.2.2, v1.2.1, v1.2.0"
    )
    assert thread.status == "done" and thread.consecutive_errors == {}
    assert deploys(deploy_log) == [{"tag": "v1.2.2", "environment": "staging"}]


async def test_a_lost_server_becomes_an_error_event_not_a_crash(http_server: HTTPServer, deploy_log: Path) -> None:
    async with MCPServer.http(http_server.url) as server:
        tools = await mcp_tools(server)
        http_server.process.kill()
        http_server.process.wait()
        model = ScriptedModel(['{"intent": "list_git_tags"}', DONE])
        thread = await Agent(name="deployer", model=model, tools=tools).run(
            Thread.start("user_input", {"text": "tags?"})
        )
        [error] = events(thread, "error")
        assert error["error_type"] == "MCPConnectionError" and "deploys" in error["message"]
        assert thread.status == "done"
        with pytest.raises(MCPConnectionError, match="'deploys' is gone .*; nothing was sent to it"):
            await tools[0](limit=1)  # not sent: unlike the call in flight, this one certainly did not run


async def test_nested_arguments_reach_the_server_under_its_own_names(deploy_log: Path) -> None:
    async with stdio(deploy_log) as server:
        [schedule] = await mcp_tools(server, include=["scheduleMaintenance"], policies={"scheduleMaintenance": "auto"})
        model = ScriptedModel(
            ['{"intent": "schedule_maintenance", "service": "api", "window": {"start": "2026-01-05T09:00:00Z"}}', DONE]
        )
        thread = await Agent(name="ops", model=model, tools=[schedule]).run(Thread.start("user_input", {"text": "x"}))
    [call] = events(thread, "tool_call")
    assert call["arguments"] == {
        "service": "api",
        "window": {"start": "2026-01-05T09:00:00Z", "minutes": 30},
        "notify": None,
    }
    [response] = events(thread, "tool_response")
    assert response["result"] == {"service": "api", "start": "2026-01-05T09:00:00Z", "minutes": 30, "notify": []}


# -- policies, names, listing ------------------------------------------------------------------


async def test_policies_prefixes_and_include_override_the_annotations(deploy_log: Path) -> None:
    async with stdio(deploy_log) as server:
        by_default = await mcp_tools(server)
        assert [t.name for t in by_default] == ["list_git_tags", "deploy_backend", "schedule_maintenance"]

        overridden = await mcp_tools(server, policies={"list_git_tags": "approval", "schedule_maintenance": "auto"})
        assert [t.policy for t in overridden] == ["approval", "approval", "auto"]

        distrustful = await mcp_tools(server, default_policy="approval", policies={"scheduleMaintenance": "external"})
        assert [t.policy for t in distrustful] == ["approval", "approval", "external"]

        prefixed = await mcp_tools(server, prefix="ops", include=["deploy_backend", "ops_list_git_tags"])
        assert [(t.name, t.mcp_name) for t in prefixed] == [
            ("ops_list_git_tags", "list_git_tags"),
            ("ops_deploy_backend", "deploy_backend"),
        ]
        assert isinstance(prefixed[0], MCPTool) and prefixed[0].server is server

        with pytest.raises(UserError, match=r"policies names tools 'deploys' does not have: \['deploy'\]"):
            await mcp_tools(server, policies={"deploy": "auto"})
        with pytest.raises(UserError, match="policy must be one of"):
            await mcp_tools(server, policies={"deploy_backend": "sometimes"})  # pyright: ignore[reportArgumentType]
        with pytest.raises(UserError, match="must be snake_case"):
            await mcp_tools(server, prefix="Ops")


@pytest.mark.parametrize(
    ("mcp_name", "prefix", "expected"),
    [
        ("list_git_tags", None, "list_git_tags"),
        ("createPullRequest", None, "create_pull_request"),
        ("HTTPGet", None, "http_get"),
        ("list-files", "fs", "fs_list_files"),
        ("github.search_issues", None, "github_search_issues"),
        ("3d_render", None, "tool_3d_render"),
    ],
)
def test_tool_names_become_snake_case_intent_names(mcp_name: str, prefix: str | None, expected: str) -> None:
    assert tool_name(mcp_name, prefix) == expected


async def test_connection_misuse_and_failures_are_clear(tmp_path: Path) -> None:
    with pytest.raises(MCPConnectionError, match="cannot connect to MCP server"):
        async with MCPServer.stdio(str(tmp_path / "no-such-server")):
            pass
    with pytest.raises(MCPConnectionError, match="cannot connect to MCP server 'python"):
        async with MCPServer.stdio(sys.executable, ["-c", "pass"]):  # exits at once: no handshake
            pass
    with pytest.raises(MCPConnectionError) as refused:
        async with MCPServer.http("http://user:hunter2@127.0.0.1:9/mcp?key=abc"):  # nothing listens on 9
            pass
    assert "'http://127.0.0.1:9/mcp'" in str(refused.value) and "hunter2" not in str(refused.value)
    assert "abc" not in str(refused.value)
    server = MCPServer(Client(echo_server({})), label="echo")
    with pytest.raises(UserError, match="not connected"):
        await mcp_tools(server)
    async with server:
        pass
    with pytest.raises(UserError, match="build a new MCPServer"):
        async with server:
            pass
    with pytest.raises(KeyError):  # the body's own exception, not an ExceptionGroup around it
        async with MCPServer(Client(echo_server({}))):
            raise KeyError("from the body")


# -- schema conversion, against an in-process server that echoes what it received ---------------

WINDOW = {
    "type": "object",
    "properties": {"start": {"type": "string"}, "minutes": {"type": "integer", "default": 30, "minimum": 1}},
    "required": ["start"],
}
NODE = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # name, properties + required, arguments the model sends, what the server gets, arguments that fail
    ("required_optional", {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]},
     {"a": "x", "b": None}, {"a": "x"}, {"b": 2}),
    ("enum", {"properties": {"env": {"enum": ["staging", "production"]}}, "required": ["env"]},
     {"env": "staging"}, {"env": "staging"}, {"env": "moon"}),
    ("ref_with_defaults", {"$defs": {"Window": WINDOW}, "properties": {"w": {"$ref": "#/$defs/Window"}}, "required": ["w"]},
     {"w": {"start": "now"}}, {"w": {"start": "now", "minutes": 30}}, {"w": {"start": "now", "minutes": 0}}),
    ("array_of_objects", {"properties": {"xs": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}}}, "required": ["xs"]},
     {"xs": [{"n": 1.5}]}, {"xs": [{"n": 1.5}]}, {"xs": []}),
    ("nullable_required", {"properties": {"x": {"type": ["string", "null"]}}, "required": ["x"]},
     {"x": None}, {"x": None}, {}),
    ("nullable_optional", {"properties": {"x": {"type": ["string", "null"]}, "y": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "z": {"type": ["string", "null"]}}},
     {"x": None, "y": None}, {"x": None, "y": None}, {"x": 3}),
    ("any_of", {"properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}, "required": ["v"]},
     {"v": "3"}, {"v": "3"}, {"v": [3]}),
    ("map", {"properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}, "required": ["labels"]},
     {"labels": {"team": "core"}}, {"labels": {"team": "core"}}, {"labels": {"team": 1}}),
    ("recursive_ref", {"$defs": {"Node": NODE}, "properties": {"tree": {"$ref": "#/$defs/Node"}}, "required": ["tree"]},
     {"tree": {"children": [{"children": []}]}}, {"tree": {"children": [{"children": []}]}}, {"tree": {"children": 5}}),
    ("odd_names", {"properties": {"from": {"type": "string"}, "page-size": {"type": "integer"}, "intent": {"type": "string"}, "json": {"type": "boolean"}}, "required": ["from", "intent"]},
     {"from": "a", "page-size": 2, "intent_": "x"}, {"from": "a", "page-size": 2, "intent": "x"}, {"from": "a"}),
    ("bounds", {"properties": {"n": {"type": "integer", "minimum": 1, "maximum": 5}, "s": {"type": "string", "maxLength": 3}}},
     {"n": 5, "s": "abc"}, {"n": 5, "s": "abc"}, {"s": "abcd"}),
    ("untyped", {"properties": {"anything": {"description": "whatever you like"}}, "required": ["anything"]},
     {"anything": {"a": [1, None]}}, {"anything": {"a": [1, None]}}, {}),
    ("secret", {"properties": {"pin": {"type": "string", "format": "password", "writeOnly": True}}, "required": ["pin"]},
     {"pin": "1234"}, {"pin": "1234"}, {"pin": 1234}),
]  # fmt: skip


def echo_server(schemas: Mapping[str, Mapping[str, Any]]) -> Server[Any]:
    """A low-level MCP server listing one tool per schema; each call answers with the arguments it got."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        tools = [mt.Tool(name=name, input_schema={"type": "object", **schema}) for name, schema in schemas.items()]
        return mt.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: mt.CallToolRequestParams) -> mt.CallToolResult:
        if params.name == "refuse":  # a protocol-level error instead of a result
            raise MCPError(code=mt.INVALID_PARAMS, message="refused:\n  not today")
        if params.name == "fail":  # an error result without a word of explanation
            return mt.CallToolResult(content=[], is_error=True)
        if params.name == "key":
            return mt.CallToolResult(content=[], structured_content=(params.meta or {}).get(IDEMPOTENCY_KEY_META))
        return mt.CallToolResult(content=[], structured_content=params.arguments)

    return Server("echo", on_list_tools=list_tools, on_call_tool=call_tool)


async def test_input_schemas_become_arguments_the_server_gets_back_unchanged() -> None:
    async with MCPServer(Client(echo_server({case[0]: case[1] for case in CASES}))) as server:
        tools = {t.name: t for t in await mcp_tools(server, default_policy="auto")}
        for name, schema, sent, received, invalid in CASES:
            tool = tools[name]
            required = set(tool.intent.model_json_schema().get("required", []))
            assert required == set(schema.get("required", [])) - {"intent"} | (
                {"intent_"} if name == "odd_names" else set()
            ), name
            assert await tool.invoke(sent) == received, name
            with pytest.raises(ValidationError):
                tool.arguments.model_validate(invalid)
        described = tools["untyped"].intent.model_json_schema()["properties"]["anything"]
        assert described["description"] == "whatever you like"
        assert tools["secret"].secret_fields == {"pin"} and tools["enum"].secret_fields == set()
        agent = Agent(name="a", model=ScriptedModel([]), tools=[tools["secret"]])
        call = Event("tool_call", {"intent": "secret", "arguments": {"pin": "1234"}, "policy": "auto"})
        assert "1234" not in str(agent.render(Thread.start("user_input", {"text": "x"}).append(call)))


async def test_an_explicit_null_reaches_the_server_and_a_property_left_out_does_not() -> None:
    schema = {"properties": {"note": {"type": ["string", "null"]}, "tag": {"type": "string"}}}
    async with MCPServer(Client(echo_server({"label": schema}))) as server:
        tools = await mcp_tools(server, default_policy="auto")
        calls = ['{"intent": "label", "note": null}', '{"intent": "label", "tag": "t"}', DONE]
        thread = await Agent(name="a", model=ScriptedModel(calls), tools=tools).run(
            Thread.start("user_input", {"text": "x"})
        )
        assert await tools[0](note=None) == {"note": None} and await tools[0]() == {}  # called directly, the same
    # As the thread records them, and as the server got them: null to clear the note, nothing to keep it.
    assert [c["arguments"] for c in events(thread, "tool_call")] == [{"note": None}, {"tag": "t"}]
    assert [r["result"] for r in events(thread, "tool_response")] == [{"note": None}, {"tag": "t"}]


async def test_an_intent_property_left_out_is_not_sent_as_the_tools_name() -> None:
    # Before: the parser's loose key matching took the envelope's `intent` for `intent_`, so the
    # server got intent="label" though the model wrote no such property.
    schema = {"properties": {"intent": {"type": "string"}, "tag": {"type": "string"}}}
    async with MCPServer(Client(echo_server({"label": schema}))) as server:
        tools = await mcp_tools(server, default_policy="auto")
        calls = ['{"intent": "label", "tag": "t"}', '{"intent": "label", "intent_": "x"}', DONE]
        thread = await Agent(name="a", model=ScriptedModel(calls), tools=tools).run(
            Thread.start("user_input", {"text": "x"})
        )
        assert await tools[0](tag="t") == {"tag": "t"}  # called directly, the same
    assert [c["arguments"] for c in events(thread, "tool_call")] == [{"tag": "t"}, {"intent_": "x"}]
    assert [r["result"] for r in events(thread, "tool_response")] == [{"tag": "t"}, {"intent": "x"}]


async def test_a_property_named_self_can_be_given_to_a_direct_call() -> None:
    # Before: `Tool.__call__`'s own `self` took the keyword, a TypeError ("multiple values").
    async with MCPServer(Client(echo_server({"who": {"properties": {"self": {"type": "string"}}}}))) as server:
        [who] = await mcp_tools(server, default_policy="auto")
        assert await who(self="me") == {"self": "me"}


def named_server(name: str) -> Server[Any]:
    """A server with one tool, `where`, that answers with the server's name and the arguments."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        schema = {"type": "object", "properties": {"tag": {"type": "string"}}}
        return mt.ListToolsResult(tools=[mt.Tool(name="where", input_schema=schema)])

    async def call_tool(ctx: ServerRequestContext[Any], params: mt.CallToolRequestParams) -> mt.CallToolResult:
        return mt.CallToolResult(content=[], structured_content={"server": name, **(params.arguments or {})})

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


async def test_a_tool_copied_onto_another_server_calls_that_server() -> None:
    # Before: the tool's function closed over the tool it was built as, so a copy made with
    # `dataclasses.replace(tool, server=b)` still sent every call to a.
    async with MCPServer(Client(named_server("a"))) as a, MCPServer(Client(named_server("b"))) as b:
        [where] = await mcp_tools(a, default_policy="auto")
        moved = dataclasses.replace(where, server=b)
        assert await moved(tag="t") == {"server": "b", "tag": "t"}
        assert await moved.invoke({"tag": "t"}) == {"server": "b", "tag": "t"}
        assert await where(tag="t") == {"server": "a", "tag": "t"}  # the original stays where it was
        seen: list[dict[str, Any]] = []

        @functools.wraps(where.function)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:  # a wrapper of the function, as tracing's
            seen.append(kwargs)
            return await where.function(*args, **kwargs)

        traced = dataclasses.replace(dataclasses.replace(where, function=wrapped), server=b)
        assert await traced.invoke({"tag": "t"}) == {"server": "b", "tag": "t"} and seen == [{"tag": "t"}]
        thread = await Agent(name="x", model=ScriptedModel(['{"intent": "where"}', DONE]), tools=[moved]).run(
            Thread.start("user_input", {"text": "x"})
        )
    assert [r["result"] for r in events(thread, "tool_response")] == [{"server": "b"}]


async def test_a_call_carries_its_idempotency_key_to_the_server() -> None:
    async with MCPServer(Client(echo_server({"key": {}}))) as server:
        tools = await mcp_tools(server, default_policy="auto")
        agent = Agent(name="a", model=ScriptedModel(['{"intent": "key"}', DONE]), tools=tools)
        thread = await agent.run(Thread.start("user_input", {"text": "x"}))
    [call] = [e for e in thread.events if e.type == "tool_call"]
    [response] = events(thread, "tool_response")
    assert response["result"] == call.id  # the loop's key for the call: the same on every retry


async def test_a_result_over_the_servers_limit_is_an_error_the_model_reads() -> None:
    # Before: an MCP server (third-party input) could put a result of any size into the thread.
    async with MCPServer(Client(echo_server({"label": {"properties": {"note": {"type": "string"}}}}))) as server:
        tools = await mcp_tools(server, default_policy="auto", max_result_chars=20)
        assert tools[0].max_result_chars == 20
        calls = ['{"intent": "label", "note": "short"}', '{"intent": "label", "note": "far too long a note"}', DONE]
        thread = await Agent(name="a", model=ScriptedModel(calls), tools=tools).run(
            Thread.start("user_input", {"text": "x"})
        )
        assert (await mcp_tools(server))[0].max_result_chars == 100_000  # the default
        with pytest.raises(UserError, match="^mcp_tools: max_result_chars must be a positive number"):
            await mcp_tools(server, max_result_chars=0)
    assert [r["result"] for r in events(thread, "tool_response")] == [{"note": "short"}]  # 16 characters
    [error] = events(thread, "error")
    assert error["error_type"] == "ResultTooLarge" and "is 30 characters, over its limit of 20" in error["message"]


async def test_refused_calls_and_silent_failures_are_tool_errors() -> None:
    async with MCPServer(Client(echo_server({"refuse": {}, "fail": {}}))) as server:
        refuse, fail = await mcp_tools(server)
        with pytest.raises(MCPToolError, match="^refused: not today$") as refused:
            await refuse.invoke({})
        assert (refused.value.server, refused.value.tool) == ("echo", "refuse")
        with pytest.raises(MCPToolError, match="^the tool failed$"):
            await fail()


@st.composite
def schema_and_value(draw: st.DrawFn, depth: int = 0) -> tuple[dict[str, Any], JsonValue]:
    """A JSON Schema from the shapes MCP servers use (an object at the top), and a value valid against it."""
    kinds = ["string", "integer", "number", "boolean", "enum"] + (["array", "object"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds)) if depth else "object"
    if kind == "string":
        return {"type": "string"}, draw(st.text(max_size=5))
    if kind == "integer":
        return {"type": "integer"}, draw(st.integers())
    if kind == "number":
        return {"type": "number"}, draw(st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return {"type": "boolean"}, draw(st.booleans())
    if kind == "enum":
        options = draw(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=4, unique=True))
        return {"enum": options}, draw(st.sampled_from(options))
    if kind == "array":
        item_schema, _ = draw(schema_and_value(depth + 1))
        values = draw(st.lists(st.just(item_schema).flatmap(value_of), max_size=3))
        return {"type": "array", "items": item_schema}, values
    names = draw(st.lists(st.sampled_from(["a", "from", "page-size", "json", "_x", "b2", "model_x"]), unique=True))
    properties = {name: draw(schema_and_value(depth + 1)) for name in names}
    required = [name for name in names if draw(st.booleans())]
    value = {name: v for name, (_, v) in properties.items() if name in required or draw(st.booleans())}
    schema = {"type": "object", "properties": {n: s for n, (s, _) in properties.items()}, "required": required}
    return schema, value


def value_of(schema: dict[str, Any]) -> st.SearchStrategy[JsonValue]:
    """Another valid value for `schema` (arrays draw several items of one item schema)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    simple: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=5),
        "integer": st.integers(),
        "number": st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
    }
    if schema["type"] in simple:
        return simple[schema["type"]]
    if schema["type"] == "array":
        return st.lists(value_of(schema["items"]), max_size=3)
    required = schema["required"]
    return st.fixed_dictionaries(
        {n: value_of(s) for n, s in schema["properties"].items() if n in required},
        optional={n: value_of(s) for n, s in schema["properties"].items() if n not in required},
    )


@settings(max_examples=60, deadline=None)
@given(schema_and_value())
def test_any_valid_value_survives_the_round_trip_to_the_server(pair: tuple[dict[str, Any], JsonValue]) -> None:
    schema, value = pair
    model = SchemaConverter(schema, "Case").model(schema, "Case")
    assert model.model_validate(value).model_dump(mode="json") == value
    assert set(model.model_json_schema().get("required", [])) == set(schema["required"])


# -- results ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (mt.CallToolResult(content=[mt.TextContent(text="a"), mt.TextContent(text="b")]), "a\nb"),
        (mt.CallToolResult(content=[mt.TextContent(text="{}")], structured_content={"n": 1}), {"n": 1}),
        (
            mt.CallToolResult(
                content=[mt.TextContent(text="chart:"), mt.ImageContent(data="aGVsbG8h", mime_type="image/png")]
            ),
            ["chart:", {"type": "image", "mime_type": "image/png", "bytes": 6}],
        ),
        (
            mt.CallToolResult(
                content=[mt.EmbeddedResource(resource=mt.TextResourceContents(uri="file:///a.txt", text="hello"))]
            ),
            "hello",
        ),
        (
            mt.CallToolResult(content=[mt.ResourceLink(uri="file:///b.bin", name="b")]),
            [{"type": "resource_link", "uri": "file:///b.bin", "name": "b"}],
        ),
    ],
)
def test_results_are_structured_content_else_text(result: mt.CallToolResult, expected: JsonValue) -> None:
    assert result_value(result) == expected


# -- packaging ----------------------------------------------------------------------------------


def test_the_public_surface_is_pinned_and_the_core_does_not_import_mcp() -> None:
    assert sorted(threadloom.mcp.__all__) == [
        "IDEMPOTENCY_KEY_META",
        "MCPConnectionError",
        "MCPServer",
        "MCPTool",
        "MCPToolError",
        "mcp_tools",
        "result_value",
        "tool_name",
    ]
    code = "import sys, threadloom; print('threadloom.mcp' in sys.modules, 'mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
