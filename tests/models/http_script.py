"""A real HTTP server on 127.0.0.1 that answers each POST with the next scripted reply.

The provider tests (OpenAI-compatible, Anthropic) drive their SDKs against it: 429s, timeouts,
HTML error pages and broken JSON are what a 135M local model cannot be made to produce.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = ["Received", "Reply", "ScriptedServer", "serving"]

_S = TypeVar("_S", bound="ScriptedServer")


@dataclass
class Reply:
    """One scripted answer: a JSON body (or raw text), a status, headers; or hold until released.

    A text body goes out as `text/html` and anything else as JSON, unless `headers` names a
    content-type.
    """

    body: object = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict[str, str])
    hold: bool = False


@dataclass
class Received:
    """One request the server got."""

    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any


class ScriptedServer:
    """Answers from `replies` in order (`otherwise` once they run out) and records each request."""

    def __init__(self, otherwise: Reply, *, prefix: str = "") -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.received.append(Received(self.path, headers, json.loads(raw) if raw else None))
                reply = server.replies.pop(0) if server.replies else otherwise
                if reply.hold:
                    server.release.wait(30)  # the client times out first; the fixture releases us
                text = isinstance(reply.body, str)
                data = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode()
                named = {k.lower() for k in reply.headers}
                try:
                    self.send_response(reply.status)
                    if "content-type" not in named:
                        self.send_header("content-type", "text/html" if text else "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a timed-out client hung up

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output quiet

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}{prefix}"

    def reply(self, *replies: Reply | dict[str, Any]) -> None:
        """Queue replies; a dict is a 200 with that JSON body."""
        self.replies += [r if isinstance(r, Reply) else Reply(r) for r in replies]

    @property
    def paths(self) -> list[str]:
        """The path of every request so far."""
        return [r.path for r in self.received]

    @property
    def last(self) -> Any:
        """The body of the last request."""
        return self.received[-1].body


@contextmanager
def serving(server: _S) -> Generator[_S]:
    """Serve on a background thread until the block ends; held replies are released first."""
    thread = threading.Thread(target=server.http.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.http.shutdown()
        server.http.server_close()
        thread.join()
