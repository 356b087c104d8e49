"""An MCP connection's edges: what its name shows, a server that dies, a listing that never ends."""

from __future__ import annotations

import sys

import pytest

from threadloom.mcp import MCPConnectionError, MCPServer


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "pass", "--token", "s3cr3t"],
        ["--token", "s3cr3t", "-c", "pass"],
        ["--api-key=s3cr3t", "-c", "pass"],
        ["API_KEY=s3cr3t", "-c", "pass"],
        ["--password", "s3cr3t"],
        ["--header", "Authorization: Bearer s3cr3t"],
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
