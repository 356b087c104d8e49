"""A webhook receiver for the tests: a real HTTP app that checks each request with the `standardwebhooks` package."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as it arrived."""

    webhook_id: str
    body: dict[str, Any]
    answered: int


@dataclass
class Receiver:
    """Answers 503 to the first `fail_first` requests (or while `down`), 204 after; keeps every verified request."""

    secret: str
    fail_first: int = 0
    down: bool = False
    requests: list[Received] = field(default_factory=list[Received])
    forged: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            content = await request.body()
            try:
                body = Webhook(self.secret).verify(content, dict(request.headers))
            except WebhookVerificationError:
                with self._lock:
                    self.forged += 1
                return Response(status_code=401)
            with self._lock:
                failing = self.down or len(self.requests) < self.fail_first
                status = 503 if failing else 204
                self.requests.append(Received(request.headers["webhook-id"], body, status))
            return Response(status_code=status, headers={"Retry-After": "0"} if failing else None)

        return app

    def delivered(self, kind: str | None = None) -> list[Received]:
        """The requests answered 204, of `type` kind if given."""
        with self._lock:
            return [r for r in self.requests if r.answered == 204 and (kind is None or r.body["type"] == kind)]


def wait_for(check: Callable[[], object], what: str, seconds: float = 60) -> None:
    """Poll `check` until it is true (observable state, not a sleep of a guessed length); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
