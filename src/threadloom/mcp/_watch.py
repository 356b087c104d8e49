"""`Watch`: notices when a transport's read stream ends, so a call after that is known not to be sent."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from types import TracebackType

import anyio
from mcp.client import Transport
from mcp.client._transport import ReadStream, TransportStreams, WriteStream
from mcp.shared.message import SessionMessage

__all__ = ["Watch"]

_Item = SessionMessage | Exception


class Watch:
    """Whether the read stream of a transport it wrapped has ended: from then on the server is gone.

    The SDK's session ends quietly when the server's process exits (or its HTTP stream closes), and
    answers any later request with the same "Connection closed" as the one in flight at that moment.
    Knowing the end came first tells a call that was never sent from one that may have run.
    """

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended = False
        """The stream ended, closed or broke: nothing sent now would be answered."""

    @asynccontextmanager
    async def transport(self, inner: Transport) -> AsyncGenerator[TransportStreams]:
        """`inner`, its read stream watched."""
        async with inner as (read, write):
            streams: tuple[ReadStream[_Item], WriteStream[SessionMessage]] = (_WatchedRead(read, self), write)
            yield streams


class _WatchedRead:
    """A read stream (the SDK's `ReadStream` protocol) that tells its `Watch` when it ends or closes."""

    __slots__ = ("_inner", "_watch")

    def __init__(self, inner: ReadStream[_Item], watch: Watch) -> None:
        self._inner = inner
        self._watch = watch

    @property
    def last_context(self) -> object:
        """The sender's context of the last item, which the SDK reads off a stream that has one."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> _Item:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._watch.ended = True
            raise

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> _Item:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._watch.ended = True
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        self._watch.ended = True  # the session stopped reading, for whatever reason: nothing more is answered
        return await self._inner.__aexit__(exc_type, exc_val, exc_tb)
