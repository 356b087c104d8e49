"""A real MCP server for tests/test_mcp.py and docs/mcp.md, built with the `mcp` SDK's MCPServer (FastMCP).

Run it as `python tests/mcp_server.py stdio` (the client starts it as a subprocess) or
`python tests/mcp_server.py http` (streamable HTTP on 127.0.0.1, on a free port the OS picks; the
port is printed as `port=N` on stdout once the socket listens). Each deploy appends one JSON line
to the file named by `DEPLOY_LOG`, so a test can count effects from outside the process.
`MCP_PAGE_SIZE=N` makes `tools/list` answer N tools a page, to exercise the client's pagination.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any, Literal

import anyio
import uvicorn
from mcp.server import mcpserver
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

TAGS = ["v1.2.3", "v1.2.2", "v1.2.1", "v1.2.0"]


class Window(BaseModel):
    """A maintenance window."""

    start: str = Field(description="start time, ISO 8601")
    minutes: int = Field(default=30, ge=1, description="how long the window lasts")


class Page:
    """Middleware that cuts `tools/list` into pages of `size`, with the offset as the cursor."""

    def __init__(self, size: int) -> None:
        self.size = size

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        # The chain hands back the wire dict (camelCase keys), so the page is cut there.
        tools: list[Any] = result["tools"]
        start = int((ctx.params or {}).get("cursor") or 0)
        end = start + self.size
        page = {**result, "tools": tools[start:end]}
        if end < len(tools):
            page["nextCursor"] = str(end)
        return page


def build(page_size: int | None = None) -> mcpserver.MCPServer:
    """The deploy server: one read-only tool, one destructive, one idempotent, one that always fails."""
    server = mcpserver.MCPServer("deploys", log_level="WARNING", middleware=[Page(page_size)] if page_size else None)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def list_git_tags(limit: int = 3) -> list[str]:
        """The most recent git tags, newest first.

        Args:
            limit: How many tags to return.
        """
        return TAGS[:limit]

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
        """Deploy a tagged backend build to an environment.

        Args:
            tag: The git tag to deploy.
            environment: Where to deploy it.
        """
        if tag not in TAGS:
            raise ToolError(f"no such tag {tag!r}; the tags are {', '.join(TAGS)}")
        with open(os.environ["DEPLOY_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"tag": tag, "environment": environment}) + "\n")
        return f"deployed {tag} to {environment}"

    @server.tool(name="scheduleMaintenance", annotations=ToolAnnotations(idempotent_hint=True))
    def schedule_maintenance(service: str, window: Window, notify: list[str] | None = None) -> dict[str, Any]:
        """Book a maintenance window for a service (booking the same window twice is harmless).

        Args:
            service: The service to take down.
            window: When.
            notify: Who to tell.
        """
        return {"service": service, "start": window.start, "minutes": window.minutes, "notify": notify or []}

    return server


async def _serve_http(server: mcpserver.MCPServer) -> None:
    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    server.custom_route("/health", methods=["GET"])(health)
    app = server.streamable_http_app(host="127.0.0.1")
    # Binding port 0 here (not in the test) lets the OS pick a free port with no race.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"port={sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    """`stdio` or `http` from argv."""
    transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    page_size = int(os.environ.get("MCP_PAGE_SIZE", "0")) or None
    server = build(page_size)
    if transport == "http":
        anyio.run(_serve_http, server)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
