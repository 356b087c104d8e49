"""The inbox's sign-in: a signed session cookie, and the CSRF tokens its forms carry.

Signing in with an API key sets `threadloom_session`: HttpOnly, SameSite=Strict, Secure behind
https, signed (HMAC-SHA256) with the server's secret. It holds the key's name, the SHA-256 of its
secret (never the secret) and an expiry; every request finds the key again by that digest, so a
deleted key ends its sessions at once. Every form carries a token bound to the session (or, on
the sign-in page, to a one-off cookie), an HMAC no other site can compute.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response

from ._auth import config_of
from ._compare import same_token
from ._keys import ApiKey

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_TTL",
    "Viewer",
    "csrf_ok",
    "csrf_token",
    "keep_login_nonce",
    "login_token",
    "sign_in",
    "sign_out",
    "viewer_of",
]

SESSION_COOKIE = "threadloom_session"
LOGIN_COOKIE = "threadloom_login"
SESSION_TTL = timedelta(hours=12)
"""How long a sign-in lasts."""
_PATH = "/inbox"
_VERSION = "s1"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in to the inbox."""

    key: ApiKey
    """Their API key (found again on every request)."""
    csrf: str
    """The token this session's forms carry."""

    @property
    def by(self) -> str:
        """How their decisions are recorded: as the API records them, `key:NAME`."""
        return f"key:{self.key.name}"

    def accepts(self, given: str | None) -> bool:
        """Whether a form's CSRF token is this session's (in constant time)."""
        return same_token(given or "", self.csrf)

    @property
    def can_decide(self) -> bool:
        """Their key holds the `approve` scope."""
        return "approve" in self.key.scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: bytes, purpose: str, text: str) -> str:
    # Each use of the secret signs under its own label, so no token of one kind passes for another.
    return _b64(hmac.new(secret, f"{purpose}.{text}".encode(), hashlib.sha256).digest())


def csrf_token(secret: bytes, bound: str) -> str:
    """The CSRF token of forms shown to whoever holds `bound` (a session cookie, a sign-in nonce, an answer link)."""
    return _mac(secret, "csrf", bound)


def csrf_ok(secret: bytes, bound: str | None, given: str | None) -> bool:
    """Whether a form's token is the one `bound` gets (in constant time)."""
    return bool(bound and given) and same_token(given or "", csrf_token(secret, bound or ""))


def _seal(secret: bytes, key: ApiKey, expires: datetime) -> str:
    claims = {"n": key.name, "d": _b64(key.digest), "x": int(expires.timestamp())}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{_VERSION}.{body}.{_mac(secret, _VERSION, body)}"


def _unseal(secret: bytes, text: str) -> tuple[bytes, datetime] | None:
    """The key digest and expiry a cookie holds, or None when it is not one this server signed."""
    version, _, rest = text.partition(".")
    body, _, mac = rest.partition(".")
    if version != _VERSION or not same_token(mac, _mac(secret, _VERSION, body)):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        digest = base64.urlsafe_b64decode(str(claims["d"]) + "=" * (-len(str(claims["d"])) % 4))
        return digest, datetime.fromtimestamp(int(claims["x"]), UTC)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


async def viewer_of(request: Request) -> Viewer | None:
    """Who the request's session cookie signs in, or None: no cookie, not ours, expired, or the key is gone or lacks `read`."""
    config = config_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    sealed = _unseal(config.secret, cookie) if cookie else None
    if cookie is None or sealed is None or sealed[1] <= datetime.now(UTC):
        return None
    key = await config.keys.find_digest(sealed[0])
    if key is None or "read" not in key.scopes:
        return None
    return Viewer(key, csrf_token(config.secret, f"session:{cookie}"))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or config_of(request).public_url.startswith("https://")


def sign_in(request: Request, response: Response, key: ApiKey) -> None:
    """Set the session cookie for `key` on `response`."""
    expires = datetime.now(UTC) + SESSION_TTL
    response.set_cookie(
        SESSION_COOKIE,
        _seal(config_of(request).secret, key, expires),
        max_age=int(SESSION_TTL.total_seconds()),
        path=_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=_PATH)


def sign_out(response: Response) -> None:
    """Clear the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=_PATH, httponly=True, samesite="strict")


def login_token(request: Request) -> tuple[str, str | None]:
    """The sign-in form's CSRF token, bound to a one-off cookie; and that cookie's new value when the browser has none."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    new = None if nonce else secrets.token_urlsafe(24)
    return csrf_token(config_of(request).secret, f"login:{nonce or new}"), new


def keep_login_nonce(request: Request, response: Response, nonce: str | None) -> None:
    """Set the sign-in form's one-off cookie (when `login_token` made a new one)."""
    if nonce is not None:
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=3600, path=_PATH, httponly=True, samesite="strict", secure=_secure(request)
        )
