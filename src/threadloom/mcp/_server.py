"""`MCPServer`: one connection to a Model Context Protocol server, over stdio or streamable HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, RequestParamsMeta, TextContent
from mcp_types import Tool as MCPToolDefinition
from pydantic import ValidationError

from ..exceptions import ThreadloomError, UserError
from ._label import http_label, stdio_label
from ._watch import Watch

__all__ = ["IDEMPOTENCY_KEY_META", "MCPConnectionError", "MCPServer", "MCPToolError"]

IDEMPOTENCY_KEY_META = "threadloom/idempotency-key"
"""The `_meta` key of a tool call's idempotency key (`threadloom.intents.idempotency_key()`)."""

log = logging.getLogger("threadloom.mcp")

_E = TypeVar("_E", bound=BaseException)
_MAX_PAGES = 1000
"""A server whose listing never ends must not hang the agent's start-up."""


class MCPToolError(ThreadloomError):
    """The server answered a tool call with an error (`isError`, or a refused request).

    Raised from the tool, so the loop records it as a compact `error` event the model can act on.
    """

    def __init__(self, message: str, *, server: str, tool: str) -> None:
        super().__init__(message)
        self.server = server
        """The server's name."""
        self.tool = tool
        """The tool's name on the server."""


class MCPConnectionError(ThreadloomError):
    """The server could not be reached, closed the connection, or did not answer in time."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server
        """The server's name (or its command or URL before it said one)."""


# What a dead process, a refused socket or a dropped stream raise from inside the SDK.
_TRANSPORT_ERRORS = (
    OSError,
    TimeoutError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    httpx2.TransportError,
)


class MCPServer:
    """A connection to one MCP server; use it as an async context manager.

    Build it with `MCPServer.stdio(...)` (the server runs as a subprocess speaking over stdin and
    stdout) or `MCPServer.http(...)` (a streamable HTTP endpoint). Inside `async with`, `mcp_tools`
    turns its tools into threadloom tools; their calls go through this connection, so the agent
    must run inside the same `async with` (and the same event loop).

    Those two watch their transport's stream, so a call made after the server died is not sent
    and says the server is gone. A server built on a `Client` of your own is not watched (the SDK
    resolves its transport inside the client, out of reach): the first call after the end is sent
    and fails as one that may or may not have taken effect; the calls after it say it is gone.
    """

    def __init__(self, client: Client, *, label: str = "MCP server") -> None:
        """Wrap an `mcp.Client` (`stdio` and `http` build the usual ones; pass your own for other transports).

        Its transport is not watched: that the server is gone shows only once a call has failed
        (see the class's docstring).

        Args:
            client: The SDK's client, not yet entered.
            label: How to name the server until it names itself (its command or URL).
        """
        self._client = client
        self._label = label
        self._stack: AsyncExitStack | None = None
        self._owned: list[AbstractAsyncContextManager[Any]] = []
        self._entered = False
        self._closing = anyio.Event()
        self._lost: BaseException | None = None
        self._watch = Watch()
        """Sees the end of the transports `stdio` and `http` build; another client's shows when a call fails."""
        self._watched = False  # the transport is one of those: only the watch says the session ended
        self._name: str | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float | None = 60.0,
    ) -> MCPServer:
        """A server started as a subprocess, spoken to over its stdin and stdout.

        Args:
            command: The executable, e.g. `"npx"` or `sys.executable`.
            args: Its arguments.
            env: Variables set for the process, over the SDK's safe default environment
                (which does not pass on the parent's secrets).
            cwd: Its working directory.
            timeout: Seconds to wait for any one answer; `None` waits for ever.
        """
        params = StdioServerParameters(command=command, args=list(args), env=dict(env) if env else None, cwd=cwd)
        watch = Watch()
        client = Client(watch.transport(stdio_client(params)), read_timeout_seconds=timeout)
        server = cls(client, label=stdio_label(command, args))
        server._watch, server._watched = watch, True
        return server

    @classmethod
    def http(cls, url: str, *, headers: Mapping[str, str] | None = None, timeout: float | None = 60.0) -> MCPServer:
        """A server behind a streamable HTTP endpoint (usually ending in `/mcp`).

        Args:
            url: The endpoint.
            headers: Sent with every request (an `Authorization` header, say).
            timeout: Seconds to wait for any one answer; `None` waits for ever.
        """
        # The SDK's defaults: 30 s to connect, 300 s between bytes of a streamed answer.
        http_client = httpx2.AsyncClient(headers=dict(headers or {}), timeout=httpx2.Timeout(30.0, read=300.0))
        watch = Watch()
        transport = watch.transport(streamable_http_client(url, http_client=http_client))
        server = cls(Client(transport, read_timeout_seconds=timeout), label=http_label(url))
        server._watch, server._watched = watch, True
        server._owned.append(http_client)  # the transport leaves a client it was given open
        return server

    @property
    def name(self) -> str:
        """The name the server gave when it connected, else its command or URL."""
        return self._name or self._label

    def __repr__(self) -> str:
        return f"MCPServer({self.name!r})"

    async def __aenter__(self) -> MCPServer:
        """Connect (start the process or open the HTTP session) and shake hands.

        Raises:
            MCPConnectionError: The server could not be started or reached.
            UserError: This object was connected before (each connects once).
        """
        if self._entered:
            # The SDK's client (and its HTTP client) can be entered once.
            raise UserError(f"{self!r} was connected before; build a new MCPServer to connect again")
        self._entered = True
        try:
            async with AsyncExitStack() as stack:
                tasks = await stack.enter_async_context(anyio.create_task_group())
                await tasks.start(self._hold)
                self._stack = stack.pop_all()
        except Exception as exc:
            cause = _transport_failure(exc) or _first(exc, MCPError)
            if cause is None:
                raise
            message = f"cannot connect to MCP server {self._label!r}: {_describe(cause)}"
            raise MCPConnectionError(message, server=self._label) from exc
        return self

    async def _hold(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection open in a task of its own until `__aexit__`.

        The SDK runs its transport in task groups, and a task group whose reader fails (the
        server died, the socket closed) cancels the task that opened it. Opened here, that
        cancels only this task: the agent's call gets an error it can record, not a cancellation.
        """
        started = False
        try:
            async with AsyncExitStack() as stack:
                for resource in self._owned:
                    await stack.enter_async_context(resource)
                await stack.enter_async_context(self._client)
                info = self._client.server_info
                self._name = info.name if info is not None and info.name else None
                started = True
                task_status.started()
                await self._closing.wait()
        except Exception as exc:
            if not started:
                raise
            self._lost = exc  # later calls fail with MCPConnectionError; the agent's loop records it

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the session (and stop the process, for stdio); an exception from the body passes unchanged."""
        stack, self._stack = self._stack, None
        if stack is not None:
            self._closing.set()
            # Not handed to the task group, which would wrap it in an ExceptionGroup.
            await stack.__aexit__(None, None, None)

    def _connected(self) -> Client:
        if self._stack is None:
            raise UserError(f"{self!r} is not connected: use it inside `async with server:`")
        if self._lost is None and self._watch.ended:
            self._lost = MCPError(code=CONNECTION_CLOSED, message="Connection closed")
        if self._lost is not None:
            # Nothing was sent: unlike a call that was in flight, this one certainly did not run.
            cause = _transport_failure(self._lost) or self._lost
            message = f"{self.name!r} is gone (the connection was lost: {_describe(cause)}); nothing was sent to it"
            raise MCPConnectionError(message, server=self.name)
        return self._client

    async def list_tools(self) -> list[MCPToolDefinition]:
        """Every tool the server offers, all pages of the listing.

        A listing that comes back to a cursor it gave before, or runs past 1000 pages, ends there
        with a warning on the `threadloom.mcp` logger.

        Raises:
            MCPConnectionError: The server did not answer.
        """
        client = self._connected()
        tools: list[MCPToolDefinition] = []
        cursor: str | None = None
        seen: set[str] = set()
        try:
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
                if cursor in seen:
                    # A server that pages in a circle would list the same tools again, for ever.
                    log.warning(
                        "the tool listing of %r came back to cursor %r; it ends there, with %d tools",
                        self.name, cursor[:100], len(tools),
                    )  # fmt: skip
                    break
                seen.add(cursor)
            else:
                log.warning("the tool listing of %r ends after %d pages, unfinished", self.name, _MAX_PAGES)
        except Exception as exc:
            self._lost = self._lost or _gone(exc, watched=self._watched)
            cause = _transport_failure(exc) or _first(exc, MCPError)
            if cause is None:
                raise
            message = f"cannot list the tools of {self.name!r}: {_describe(cause)}"
            raise MCPConnectionError(message, server=self.name) from exc
        return tools

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CallToolResult:
        """Call one tool by its name on the server.

        Args:
            name: The tool's name on the server.
            arguments: Its arguments, under the server's property names.
            idempotency_key: Sent in the request's `_meta` as `IDEMPOTENCY_KEY_META`: the same
                recorded call always carries the same key, also when it is run again after a
                crash, so a server can do the work once.

        Returns:
            The server's result, which is not an error.

        Raises:
            MCPToolError: The tool failed, or the server refused the call (unknown tool, bad arguments).
            MCPConnectionError: The server went away or did not answer in time.
        """
        client = self._connected()
        try:
            meta: RequestParamsMeta | None = None
            if idempotency_key is not None:
                meta = {IDEMPOTENCY_KEY_META: idempotency_key}
            result = await client.call_tool(name, dict(arguments), meta=meta)
        except Exception as exc:
            cause = _transport_failure(exc)
            if cause is not None:
                self._lost = self._lost or _gone(exc, watched=self._watched)
                # Sent and unanswered is not the same as not run: say so, so nobody retries blindly.
                message = f"{self.name!r} did not answer: {_describe(cause)}; the call may or may not have taken effect"
                raise MCPConnectionError(message, server=self.name) from exc
            if isinstance(exc, ValidationError):  # not the arguments (the loop would say so): the answer
                message = f"the answer of {self.name!r} is not valid MCP: {_describe(exc)}"
                raise MCPToolError(message[:300], server=self.name, tool=name) from exc
            refused = _first(exc, MCPError)
            if refused is None:
                raise
            raise MCPToolError(_one_line(refused.message), server=self.name, tool=name) from exc
        if result.is_error:
            texts = [block.text for block in result.content if isinstance(block, TextContent)]
            raise MCPToolError(_one_line(" ".join(texts)) or "the tool failed", server=self.name, tool=name)
        return result


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups; the SDK's task groups raise those."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType, reportUnknownArgumentType]
    return [exc]


def _first(exc: BaseException, kind: type[_E]) -> _E | None:
    return next((leaf for leaf in _leaves(exc) if isinstance(leaf, kind)), None)


def _transport_failure(exc: BaseException) -> BaseException | None:
    """The failure inside `exc` that means the server is gone or silent, if that is what it is."""
    for leaf in _leaves(exc):
        if isinstance(leaf, _TRANSPORT_ERRORS):
            return leaf
        if isinstance(leaf, MCPError) and leaf.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
            return leaf
    return None


def _gone(exc: BaseException, *, watched: bool) -> BaseException | None:
    """The failure inside `exc` that means the session is closed for good, if any.

    Not a timeout (a slow server may answer the next call), nor a socket error the SDK let through
    (an HTTP session may outlive one failed request). On a watched transport, not the SDK's
    CONNECTION_CLOSED either: streamable HTTP answers one request whose stream was cut with it, the
    session still fine, and the watch sees a real end.
    """
    for leaf in _leaves(exc):
        if isinstance(leaf, anyio.BrokenResourceError | anyio.ClosedResourceError | anyio.EndOfStream):
            return leaf
        if not watched and isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED:
            return leaf
    return None


def _describe(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, MCPError) else str(exc)
    return _one_line(text) or type(exc).__name__


def _one_line(text: str) -> str:
    """Server error text (often a multi-line validation report) as one line, for a compact error event."""
    return " ".join(text.split())
