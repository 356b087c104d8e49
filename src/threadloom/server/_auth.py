"""Who is calling: an API key in `Authorization: Bearer ...` (or `X-API-Key`), checked against a scope.

No key is 401, a key without the scope is 403; either way the route never runs, so nothing is
appended. The secret is never logged: only the key's name travels on, into the events it decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ._config import ServerConfig
from ._errors import ApiError
from ._keys import Scope

__all__ = ["Caller", "config_of", "holds", "require"]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tlk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, for clients that cannot set Bearer")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Caller:
    """The holder of the key a request came with."""

    name: str
    """The key's name."""
    scopes: frozenset[Scope]
    """What the key may do."""

    @property
    def by(self) -> str:
        """How decisions made with this key are recorded (`Thread.approve(by=...)`)."""
        return f"key:{self.name}"


def config_of(request: Request) -> ServerConfig:
    """The server's configuration (set by `create_app`)."""
    return request.app.state.config


def require(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """A dependency that lets a request through only with a key holding `scope`."""

    async def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Caller:
        secret = bearer.credentials if bearer is not None else header
        if not secret:
            raise ApiError(
                401, "unauthorized", "an API key is needed: `Authorization: Bearer <key>`", headers=_CHALLENGE
            )
        key = await config_of(request).keys.find(secret)
        if key is None:
            raise ApiError(401, "unauthorized", "this API key is not known", headers=_CHALLENGE)
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"the key {key.name!r} lacks the {scope!r} scope")
        return Caller(key.name, key.scopes)

    return check


async def holds(request: Request, scope: Scope) -> bool:
    """Whether the request's key is still known and holds `scope`: a long request (a stream) asks again."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    secret = credentials.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
    key = await config_of(request).keys.find(secret) if secret else None
    return key is not None and scope in key.scopes
