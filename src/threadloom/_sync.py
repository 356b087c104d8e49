"""The `*_sync` methods: an async method called from code without an event loop.

One event loop serves every `*_sync` call of an object, so what it opened on the first call (a
PostgreSQL pool is bound to the loop that opened it) stays usable on the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from .exceptions import UserError

__all__ = ["SyncCalls", "interruptible"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_S = TypeVar("_S", bound="SyncCalls")


class SyncCalls:
    """The sync face of an async class: the loop its `*_sync` methods run on, `close()` and `with`."""

    _runner: asyncio.Runner | None = None

    async def aclose(self) -> None:
        """Close what the object opened (a subclass says what)."""

    def close(self) -> None:
        """`aclose` without an event loop; the loop the `*_sync` methods use ends too."""
        self._sync(self.aclose())
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sync(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run `work` to its end on this object's loop; refused inside a running event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(work)
        work.close()  # never awaited: close it so Python does not warn
        raise UserError("*_sync methods cannot run inside an event loop; await the async method instead")

    @staticmethod
    def _blocking(
        method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]],
    ) -> Callable[Concatenate[_S, _P], _T]:
        """`name_sync = SyncCalls._blocking(name)` in a class body: the async method `name`, called without a loop."""

        @functools.wraps(method)
        def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            return self._sync(method(self, *args, **kwargs))

        call.__name__ = f"{method.__name__}_sync"
        call.__qualname__ = f"{method.__qualname__}_sync"
        call.__doc__ = f"`{method.__name__}` without an event loop."
        return call


async def interruptible(run: Callable[[asyncio.Event | None], Awaitable[_T]]) -> _T:
    """`run(stop)`, with Ctrl-C (SIGINT) setting `stop` and then raising `KeyboardInterrupt`.

    A second Ctrl-C cancels the run at once. Where there are no signals (not the main thread), `run`
    is called without a `stop`.
    """
    stop = asyncio.Event()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        if stop.is_set() and task is not None:
            task.cancel()  # the second Ctrl-C
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return await run(None)
    try:
        done = await run(stop)
    finally:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)
    if stop.is_set():
        raise KeyboardInterrupt
    return done
