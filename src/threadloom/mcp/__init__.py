"""Tools from Model Context Protocol servers (extra `mcp`): `MCPServer` and `mcp_tools`.

Example (a sketch; docs/mcp.md has one that runs):

    async with MCPServer.stdio("npx", ["-y", "@modelcontextprotocol/server-github"]) as github:
        tools = await mcp_tools(github, policies={"search_issues": "auto"})
        agent = Agent(name="triage", model=model, tools=tools)
        thread = await agent.run(thread)
"""

try:
    import mcp as _sdk  # noqa: F401  # pyright: ignore[reportUnusedImport] - fail early, naming the extra
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("threadloom.mcp needs the `mcp` extra: pip install 'threadloom[mcp]'") from exc

from ._server import IDEMPOTENCY_KEY_META, MCPConnectionError, MCPServer, MCPToolError
from ._tools import MCPTool, mcp_tools, result_value, tool_name

__all__ = [
    "IDEMPOTENCY_KEY_META",
    "MCPConnectionError",
    "MCPServer",
    "MCPTool",
    "MCPToolError",
    "mcp_tools",
    "result_value",
    "tool_name",
]
