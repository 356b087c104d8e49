"""Answer links: `/v1/answers/{token}`, a capability URL for one pending approval or human request.

The token names the thread, the pending event and an expiry, signed with HMAC-SHA256 under the
server's secret: whoever holds the link may answer that one request (no API key), until it
expires. The expiry counts from when the request was made, so every look at the same request
gives the same link. Nothing in the token is secret; it cannot be forged or changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..thread import Thread
from ._compare import same_token

__all__ = ["AnswerToken", "BadToken", "answer_url", "read_token", "redact_tokens", "sign_token"]

_VERSION = "a1"
_IN_PATH = re.compile(r"(/v1/answers/)[^/?#\s\"]+")


@dataclass(frozen=True, slots=True)
class AnswerToken:
    """What an answer link grants: answering `event_id` of `thread_id` until `expires`."""

    thread_id: str
    """The thread."""
    event_id: str
    """The pending `tool_call` (an approval) or human request."""
    expires: datetime
    """After this, the link is refused."""


class BadToken(Exception):
    """A token that is malformed, forged or expired; `reason` says which, for the page (never why a signature differs)."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired
        """The token was genuine once: its time is up (the server answers 410 rather than 403)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, f"{_VERSION}.{body}".encode(), hashlib.sha256).digest())


def sign_token(secret: bytes, token: AnswerToken) -> str:
    """The URL-safe text of `token`, signed with `secret`."""
    claims = {"t": token.thread_id, "e": token.event_id, "x": int(token.expires.timestamp())}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{_VERSION}.{body}.{_mac(secret, body)}"


def read_token(secret: bytes, text: str, *, now: datetime | None = None) -> AnswerToken:
    """The token `text` grants, once its signature and expiry are checked.

    Raises:
        BadToken: Malformed, signed with another secret, or expired.
    """
    version, _, rest = text.partition(".")
    body, _, mac = rest.partition(".")
    if version != _VERSION or not body or not mac:
        raise BadToken("this link is not an answer link")
    if not same_token(mac, _mac(secret, body)):
        raise BadToken("this link is not valid")
    try:
        claims = json.loads(_unb64(body))
        token = AnswerToken(str(claims["t"]), str(claims["e"]), datetime.fromtimestamp(int(claims["x"]), UTC))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BadToken("this link is not valid") from exc
    if (now or datetime.now(UTC)) >= token.expires:
        raise BadToken(f"this link expired at {token.expires.isoformat()}", expired=True)
    return token


def answer_url(
    public_url: str, secret: bytes, thread: Thread, ttl: timedelta, *, now: datetime | None = None
) -> str | None:
    """The answer link of the thread's pending request, or None when nothing waits for a person.

    The link expires `ttl` after the request was made, so every look gives the same one; once that
    has passed, a look gives a new link, good for `ttl` from `now` (the refusal of the old one says
    to ask for a new one).
    """
    pending = thread.pending
    if pending is None:
        return None
    expires = pending.at + ttl
    moment = now or datetime.now(UTC)
    token = AnswerToken(thread.id, pending.id, expires if expires > moment else moment + ttl)
    return f"{public_url.rstrip('/')}/v1/answers/{sign_token(secret, token)}"


def redact_tokens(text: str) -> str:
    """`text` with every answer link's token shown as `***`: a token is a capability, so no log may carry one."""
    return _IN_PATH.sub(r"\1***", text)
