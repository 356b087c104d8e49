"""A real uvicorn on 127.0.0.1 serving `create_app`, and the keys the server tests call it with."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator

import httpx
import uvicorn
from fastapi import FastAPI

ADMIN = "tlk_admin_secret"
READER = "tlk_reader_secret"
WRITER = "tlk_writer_secret"
KEYS = f"admin:{ADMIN}:read+write+approve,reader:{READER}:read,writer:{WRITER}:read+write"
SECRET = b"answer-links-test-secret-32bytes"


@contextlib.contextmanager
def serving(app: FastAPI) -> Generator[str]:
    """Run `app` in uvicorn on a free port of 127.0.0.1 (its own thread and event loop); yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


Serve = Callable[..., contextlib.AbstractContextManager[httpx.Client]]
"""`with serve(agents, key=..., **ServerConfig fields) as client:`"""
