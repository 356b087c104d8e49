"""An MCP connection's edges: what its name shows, a server that dies, a listing that never ends."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as mt
import pytest
from mcp import Client, StdioServerParameters
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from threadloom.mcp import MCPConnectionError, MCPServer, mcp_tools

MORTAL = """
import os
from mcp.server import mcpserver

server = mcpserver.MCPServer("mortal", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    return text


@server.tool()
def pid() -> int:
    return os.getpid()


@server.tool()
def die() -> str:
    os._exit(3)


server.run("stdio")
"""
UNKNOWN = "may or may not have taken effect"


@pytest.fixture
def mortal(tmp_path: Path) -> MCPServer:
    """A stdio server whose `die` tool ends its process in the middle of the call."""
    script = tmp_path / "mortal.py"
    script.write_text(MORTAL)
    return MCPServer.stdio(sys.executable, [str(script)], timeout=30)


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "pass", "--token", "s3cr3t"],
        ["--token", "s3cr3t", "-c", "pass"],
        ["--api-key=s3cr3t", "-c", "pass"],
        ["API_KEY=s3cr3t", "-c", "pass"],
        ["--password", "s3cr3t"],
        ["--header", "Authorization: Bearer s3cr3t"],
        ["-t", "s3cr3t"],
        ["-k", "s3cr3t"],
        ["-u", "-k", "s3cr3t", "stdio"],
    ],
)
async def test_a_secret_in_the_arguments_shows_neither_in_the_name_nor_in_a_failure(args: list[str]) -> None:
    server = MCPServer.stdio(sys.executable, args)  # each exits at once, before the handshake
    assert "s3cr3t" not in server.name and server.name.startswith("python")
    with pytest.raises(MCPConnectionError, match="cannot connect to MCP server 'python") as failed:
        async with server:
            pass
    assert "s3cr3t" not in str(failed.value) and "s3cr3t" not in failed.value.server


def test_the_name_keeps_the_script_or_package() -> None:
    assert MCPServer.stdio(sys.executable, ["--token", "s3cr3t", "/srv/mcp/server.py", "stdio"]).name == (
        "python server.py"
    )
    assert MCPServer.stdio("npx", ["-y", "@modelcontextprotocol/server-github"]).name == "npx server-github"
    assert MCPServer.stdio("uvx", ["mcp-server-git", "-r", "/srv/repo"]).name == "uvx mcp-server-git"
    assert MCPServer.stdio("pipx", ["run", "mcp-server-fetch"]).name == "pipx mcp-server-fetch"
    assert MCPServer.stdio("python3", ["-m", "mcp_server_fetch"]).name == "python3 mcp_server_fetch"
    # A short flag's value is passed over when a script follows it.
    assert MCPServer.stdio("node", ["-r", "dotenv/config", "build/index.js"]).name == "node index.js"


@pytest.mark.parametrize("flag", ["-t", "-k", "-a"])
def test_a_short_flag_s_value_is_not_named_when_no_script_follows(flag: str) -> None:
    assert MCPServer.stdio("/usr/local/bin/mcp-server-jira", [flag, "s3cr3t"]).name == "mcp-server-jira"
    assert MCPServer.stdio("docker", ["run", "-i", "--rm", flag, "s3cr3t", "mcp/jira"]).name == "docker"


@pytest.mark.parametrize(
    ("command", "args", "name"),
    [
        ("npx", ["--registry", "https://ada:s3cr3t@registry.example", "server-github"], "npx server-github"),
        ("npx", ["-e", "s3cr3t", "server-github"], "npx server-github"),
        ("npx", ["-e", "s3cr3t"], "npx"),
        ("npx", ["-t", "ada:s3cr3t@registry.example", "server-github"], "npx server-github"),
        ("npx", ["-t", "ada@s3cr3t"], "npx"),  # shaped like `package@version`, but an option's value
        ("mcp-server", ["--pat", "s3cr3t"], "mcp-server"),
        ("mcp-server", ["--github-pat", "s3cr3t"], "mcp-server"),
        ("srv", ["s3cr3t"], "srv"),
        ("uvx", ["mcp-server-fetch", "--user-agent", "s3cr3t"], "uvx mcp-server-fetch"),
        ("npx", ["-y", "@modelcontextprotocol/server-github@1.2.0"], "npx server-github@1.2.0"),
    ],
)
def test_no_word_but_a_script_or_a_package_is_named(command: str, args: list[str], name: str) -> None:
    assert MCPServer.stdio(command, args).name == name


def exited(pid: int) -> bool:
    """Whether the process is gone or a zombie (it holds no pipes any more); Linux's /proc says."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def wait_until_gone(pid: int) -> None:
    """Until the process has exited, and then a moment for the client's reader to meet the end of its output."""
    for _ in range(3000):
        if exited(pid):
            break
        await anyio.sleep(0.01)
    else:
        raise AssertionError(f"process {pid} did not exit")
    await anyio.sleep(1)


async def test_a_call_after_the_server_died_says_it_is_gone_not_that_it_may_have_run(mortal: MCPServer) -> None:
    async with mortal as server:
        pid = cast(dict[str, int], (await server.call_tool("pid", {})).structured_content)["result"]
        os.kill(pid, signal.SIGKILL)
        await wait_until_gone(pid)
        for _ in range(2):
            with pytest.raises(MCPConnectionError, match="'mortal' is gone") as gone:
                await server.call_tool("echo", {"text": "hi"})
            assert UNKNOWN not in str(gone.value) and gone.value.server == "mortal"
        with pytest.raises(MCPConnectionError, match="'mortal' is gone"):
            await server.list_tools()


async def test_only_the_call_in_flight_when_the_server_died_may_have_taken_effect(mortal: MCPServer) -> None:
    async with mortal as server:
        assert (await server.call_tool("echo", {"text": "hi"})).structured_content == {"result": "hi"}
        with pytest.raises(MCPConnectionError, match=UNKNOWN):
            await server.call_tool("die", {})
        with pytest.raises(MCPConnectionError, match="'mortal' is gone") as gone:
            await server.call_tool("echo", {"text": "hi"})
        assert UNKNOWN not in str(gone.value)


async def test_a_server_of_its_own_client_knows_it_is_gone_from_the_first_call_that_failed(tmp_path: Path) -> None:
    # Not built by `stdio` or `http`, its transport is not watched (the SDK resolves it inside the
    # client): a call after the process died is sent, and fails as one that may have run.
    script = tmp_path / "mortal.py"
    script.write_text(MORTAL)
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    async with MCPServer(Client(params, read_timeout_seconds=30), label="mortal.py") as server:
        pid = cast(dict[str, int], (await server.call_tool("pid", {})).structured_content)["result"]
        os.kill(pid, signal.SIGKILL)
        await wait_until_gone(pid)
        with pytest.raises(MCPConnectionError, match=UNKNOWN):
            await server.call_tool("echo", {"text": "hi"})
        with pytest.raises(MCPConnectionError, match="'mortal' is gone") as gone:
            await server.call_tool("echo", {"text": "hi"})
        assert UNKNOWN not in str(gone.value)


def paging_server(cursors: dict[str | None, str | None], asked: list[str | None]) -> Server[Any]:
    """Lists one tool per page, named after the page's cursor; `cursors` says each page's next cursor."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        cursor = params.cursor if params is not None else None
        asked.append(cursor)
        tool = mt.Tool(name=f"page_{cursor or 'first'}", input_schema={"type": "object"})
        return mt.ListToolsResult(tools=[tool], next_cursor=cursors[cursor])

    return Server("pages", on_list_tools=list_tools)


@pytest.mark.parametrize(
    ("cursors", "names"),
    [
        ({None: "a", "a": "a"}, ["page_first", "page_a"]),  # the same cursor again
        ({None: "a", "a": "b", "b": "a"}, ["page_first", "page_a", "page_b"]),  # a cycle
        ({None: "a", "a": None}, ["page_first", "page_a"]),  # a listing that ends
    ],
)
async def test_a_listing_whose_cursor_comes_back_stops_there_and_says_so(
    cursors: dict[str | None, str | None], names: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[str | None] = []
    async with MCPServer(Client(paging_server(cursors, asked))) as server:
        with caplog.at_level(logging.WARNING, logger="threadloom.mcp"):
            tools = await mcp_tools(server, default_policy="auto")
    assert [t.mcp_name for t in tools] == names
    assert len(asked) == len(names)  # no page asked for twice
    repeated = [r.getMessage() for r in caplog.records]
    assert repeated == ([] if cursors["a"] is None else [f"the tool listing of 'pages' came back to cursor 'a'; "
                                                         f"it ends there, with {len(names)} tools"])  # fmt: skip


def _mock_http(calls: list[str]) -> Any:
    """An MCP endpoint (httpx2's MockTransport) whose answer to a call of `flaky` is an SSE stream cut short."""
    import json

    import httpx2

    def answer(request: httpx2.Request) -> httpx2.Response:
        message: dict[str, Any] = json.loads(request.content) if request.method == "POST" else {}
        if "id" not in message:
            return httpx2.Response(202 if request.method == "POST" else 405)
        headers = {"mcp-session-id": "s1"}
        if message["method"] == "initialize":
            info = {"name": "mock", "version": "1"}
            result: dict[str, Any] = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": info,
            }
        elif message["method"] == "tools/call":
            calls.append(message["params"]["name"])
            if message["params"]["name"] == "flaky":  # one response's stream cut (a proxy, one pod redeployed)
                return httpx2.Response(200, headers={**headers, "content-type": "text/event-stream"}, content=b"")
            result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
        else:
            result = {"tools": []}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        return httpx2.Response(200, headers=headers, json=body)

    return httpx2.MockTransport(answer)


async def test_one_cut_http_answer_leaves_the_session_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2

    calls: list[str] = []
    real = httpx2.AsyncClient
    transport = _mock_http(calls)

    def client(**kwargs: Any) -> httpx2.AsyncClient:
        return real(transport=transport, **kwargs)

    monkeypatch.setattr(httpx2, "AsyncClient", client)
    async with MCPServer.http("http://mock/mcp", timeout=10) as server:
        assert (await server.call_tool("echo", {})).content[0] == mt.TextContent(type="text", text="ok")
        with pytest.raises(MCPConnectionError, match="may or may not have taken effect"):
            await server.call_tool("flaky", {})
        # The SDK answers the one abandoned request with CONNECTION_CLOSED; the session itself is fine.
        assert (await server.call_tool("echo", {})).content[0] == mt.TextContent(type="text", text="ok")
    assert calls == ["echo", "flaky", "echo"]
