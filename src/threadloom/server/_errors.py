"""Every error the API answers is JSON: `{"error": {"code", "message"}}`, with a status that says what to do.

The library's exceptions map to statuses once, here: an unknown thread is 404, a decision for
something the thread does not wait for is 409 (the message says what it waits for), input that
breaks a contract is 422, a store that cannot be reached is 503. A bug is a 500 whose body says
nothing of the code; the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..exceptions import IdempotencyKeyReused, InvalidTransition, StoreError, ThreadNotFound, UserError
from ._links import redact_tokens

__all__ = ["TOO_LARGE_NUMBER", "ApiError", "error_body", "install_error_handlers", "too_large_number"]

log = logging.getLogger("threadloom.server")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


TOO_LARGE_NUMBER = "the body holds a number too large to read (more digits than Python converts)"


def too_large_number(exc: BaseException | None) -> bool:
    """Whether `exc` is Python's refusal to read an integer of too many digits: valid JSON, yet unreadable."""
    return type(exc) is ValueError and "digits" in str(exc)


class ApiError(Exception):
    """An answer other than success, raised from a route: its status, a stable code and a message for people."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": {"code": code, "message": message, **details}}


def _answer(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **details), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` a JSON error body."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc.status, exc.code, exc.message, exc.headers, **exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and too_large_number(exc.__cause__):  # FastAPI's 400 for any parse failure
            return _answer(422, "invalid_request", TOO_LARGE_NUMBER)
        code = _CODES.get(exc.status_code, "error")
        return _answer(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()
        )
        return _answer(422, "invalid_request", problems or "the request is not valid")

    @app.exception_handler(ThreadNotFound)
    async def not_found(_: Request, exc: ThreadNotFound) -> JSONResponse:
        return _answer(404, "thread_not_found", f"no thread has the id {exc.thread_id!r}")

    @app.exception_handler(InvalidTransition)
    async def not_waiting(_: Request, exc: InvalidTransition) -> JSONResponse:
        return _answer(409, "not_waiting", str(exc))

    @app.exception_handler(IdempotencyKeyReused)
    async def key_reused(_: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return _answer(409, "idempotency_key_reused", str(exc))

    @app.exception_handler(UserError)
    async def user_error(_: Request, exc: UserError) -> JSONResponse:
        return _answer(422, "invalid_request", str(exc))

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("store error: %s", exc)
        return _answer(503, "store_unavailable", "the store cannot be reached; try again", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # Not only uvicorn's access log: this line names the path too, and an answer link's is a capability.
        log.error("%s %s failed", request.method, redact_tokens(request.url.path), exc_info=exc)
        return _answer(500, "internal", "the server failed on this request; the log has the details")
