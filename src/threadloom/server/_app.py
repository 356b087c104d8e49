"""`create_app`: the API, the answer links, the inbound hooks and the inbox in one FastAPI app.

The app is a pure client of its `Runtime`. Its lifespan runs what a server runs beside the
requests: a worker (unless `worker=False`) and the webhook deliveries; on shutdown (SIGTERM) the
server first finishes the requests in flight, then each run ends after its current step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..worker import Worker
from . import _answers, _hooks, _inbox, _ops, _outbox, _threads
from ._config import ServerConfig
from ._errors import install_error_handlers
from ._limits import BodyLimit

__all__ = ["create_app"]

log = logging.getLogger("threadloom.server")


def create_app(config: ServerConfig) -> FastAPI:
    """The ASGI app of one server: run it with uvicorn (`threadloom serve` does).

    Example:
        ```python
        from threadloom import Runtime
        from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys

        runtime = Runtime(store="memory://")
        app = create_app(ServerConfig(runtime=runtime, keys=KeyRing(parse_keys("ops:s3cret:read+write")), secret=b"x" * 32))
        assert app.openapi()["info"]["title"] == "threadloom"
        ```
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncGenerator[None]:
        stop = asyncio.Event()
        jobs: list[Coroutine[Any, Any, None]] = [_outbox.deliver(config, stop)]
        if config.worker:
            jobs.append(Worker(config.runtime, concurrency=config.worker_concurrency).run(stop))
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            await config.runtime.store()  # a store that cannot open fails the start, not the first request
            yield
        finally:
            stop.set()
            for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
                if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                    log.error("background task %s failed", task.get_coro(), exc_info=outcome)
            await config.runtime.aclose()
            if config.tables is not None:
                await config.tables.aclose()

    app = FastAPI(
        title="threadloom",
        version=__version__,
        summary="Launch, watch, approve and answer agents: the thread of events is the state.",
        lifespan=lifespan,
    )
    app.state.config = config
    install_error_handlers(app)
    for module in (_threads, _answers, _hooks, _ops, _inbox):
        app.include_router(module.router)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    return app
