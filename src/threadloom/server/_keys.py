"""API keys: a name, scopes, and only the hash of the secret (factor 6's simple API, not an open one).

Keys come from `THREADLOOM_API_KEYS` (`name:secret:scope+scope`, comma-separated) and from the keys
`threadloom keys create` stored. A secret is compared against every key's hash in constant time;
the secret itself is never kept, logged or shown again after it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from ..exceptions import UserError

__all__ = ["SCOPES", "ApiKey", "KeyRing", "Scope", "digest", "new_secret", "parse_keys", "parse_scopes"]

Scope = Literal["read", "write", "approve"]
"""`read` sees threads; `write` launches, sends events, forks and cancels; `approve` decides."""

SCOPES: tuple[Scope, ...] = get_args(Scope)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the server holds it: never the secret, only its SHA-256."""

    name: str
    """Who holds it: recorded in every decision made with it (`by: key:NAME`)."""
    scopes: frozenset[Scope]
    """What it may do."""
    digest: bytes
    """SHA-256 of the secret (secrets are random and long, so a fast hash is enough)."""


def digest(secret: str) -> bytes:
    """The SHA-256 of a secret, as keys are stored."""
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> str:
    """A new random key secret (`tlk_` and 32 random bytes, URL-safe)."""
    return "tlk_" + secrets.token_urlsafe(32)


def parse_scopes(text: str) -> frozenset[Scope]:
    """`read,write` or `read+write` as scopes.

    Raises:
        UserError: A scope is not one of read, write, approve, or none is given.
    """
    names = [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    unknown = sorted(set(names) - set(SCOPES))
    if unknown or not names:
        raise UserError(f"unknown scope {unknown[0]!r}" if unknown else "a key needs at least one scope")
    return frozenset(name for name in SCOPES if name in names)


def parse_keys(text: str) -> list[ApiKey]:
    """Keys from `THREADLOOM_API_KEYS`: `name:secret:scope+scope` entries separated by commas.

    Raises:
        UserError: An entry is malformed; the message names the entry by its name, never its secret.
    """
    keys: list[ApiKey] = []
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise UserError(f"THREADLOOM_API_KEYS entry {position} is not `name:secret:scope+scope`")
        name, secret, scopes = parts
        try:
            keys.append(ApiKey(name, parse_scopes(scopes), digest(secret)))
        except UserError as exc:
            raise UserError(f"THREADLOOM_API_KEYS entry {name!r}: {exc}") from None
    return keys


class KeyRing:
    """The keys a server accepts: fixed ones and, optionally, those a store holds (re-read every few seconds)."""

    def __init__(
        self,
        keys: Iterable[ApiKey] = (),
        *,
        stored: Callable[[], Awaitable[Sequence[ApiKey]]] | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        """Hold `keys`, and read `stored()` for more when a secret is looked up (cached `refresh_seconds`)."""
        self._fixed = tuple(keys)
        self._stored = stored
        self._refresh = refresh_seconds
        self._cache: tuple[ApiKey, ...] = ()
        self._read_at = float("-inf")

    async def find(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, or None; every key's hash is compared, in constant time."""
        return await self.find_digest(digest(secret))

    async def find_digest(self, wanted: bytes) -> ApiKey | None:
        """The key whose secret has this SHA-256, or None: how a signed-in session finds its key again.

        The inbox's session cookie keeps the digest (never the secret), so a key that is deleted
        ends its sessions at their next request.
        """
        found: ApiKey | None = None
        for key in (*self._fixed, *(await self._read())):
            if hmac.compare_digest(key.digest, wanted) and found is None:
                found = key
        return found

    async def _read(self) -> tuple[ApiKey, ...]:
        if self._stored is not None and time.monotonic() - self._read_at > self._refresh:
            self._cache = tuple(await self._stored())
            self._read_at = time.monotonic()
        return self._cache

    @property
    def empty(self) -> bool:
        """No fixed keys and no stored source: every request would be refused."""
        return not self._fixed and self._stored is None
