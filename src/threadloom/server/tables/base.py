"""What the server's tables hold (stored keys, webhook deliveries) and `Tables`, the Protocol of their backends."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Literal, Protocol

from ...exceptions import StoreError
from .._keys import SCOPES, ApiKey, Scope, parse_scopes

__all__ = [
    "LINK_SECRET",
    "WEBHOOK_SECRET",
    "Delivery",
    "StoredKey",
    "Tables",
    "scopes_text",
    "stored_key",
    "unusable_tables",
]

LINK_SECRET = "answer_link_secret"
"""The setting that holds the key answer links (and inbox sessions) are signed with."""
WEBHOOK_SECRET = "webhook_secret"
"""The setting that holds the generated `whsec_` secret of subscriptions given without one."""


@dataclass(frozen=True, slots=True)
class StoredKey(ApiKey):
    """An API key as `threadloom keys create` stored it: the key, and when it was made."""

    created_at: datetime
    """When it was created (UTC)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook message to one subscriber: queued, retried until delivered or given up."""

    delivery_id: str
    """Its id, sent as `webhook-id`: the same on every attempt, so a receiver can drop repeats."""
    url: str
    """The subscriber's URL."""
    body: str
    """The JSON body, exactly as signed and sent."""
    at: datetime
    """When the change it reports happened; deliveries due together go oldest change first."""
    _: KW_ONLY
    attempts: int = 0
    """Attempts made so far."""
    next_attempt_at: datetime | None = None
    """When it is due next; None once delivered or given up."""
    delivered_at: datetime | None = None
    """When a receiver answered 2xx."""
    last_error: str | None = None
    """Why the last attempt failed (`HTTP 503`, a connection error), never a secret."""

    @property
    def state(self) -> Literal["queued", "delivered", "given_up"]:
        """Where it stands."""
        if self.delivered_at is not None:
            return "delivered"
        return "queued" if self.next_attempt_at is not None else "given_up"


def scopes_text(scopes: Collection[Scope]) -> str:
    """Scopes as a key's row holds them: `read+write`, in the order of `SCOPES`."""
    return "+".join(scope for scope in SCOPES if scope in scopes)


def stored_key(name: str, scopes: str, digest_hex: str, created_at: datetime) -> StoredKey:
    """A key from its row."""
    return StoredKey(name, parse_scopes(scopes), bytes.fromhex(digest_hex), created_at)


class Tables(Protocol):
    """What the server keeps besides threads. Every method is safe to call from several processes at once."""

    async def add_key(self, key: StoredKey) -> None:
        """Store a new API key (only its digest).

        Raises:
            UserError: A key of this name exists already.
        """
        ...

    async def keys(self) -> list[StoredKey]:
        """Every stored key, by name (what `KeyRing(stored=tables.keys)` reads)."""
        ...

    async def remove_key(self, name: str) -> bool:
        """Delete the key of this name; whether there was one."""
        ...

    async def get_setting(self, name: str) -> str | None:
        """A setting's value, or None."""
        ...

    async def put_setting(self, name: str, value: str) -> None:
        """Set a setting, replacing its value."""
        ...

    async def add_setting(self, name: str, value: str) -> str:
        """Set a setting unless it is set; the stored value (the first writer's, when two race)."""
        ...

    async def queue(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries, due now; one whose id is queued already (delivered or not) is skipped.

        Returns:
            How many were new.
        """
        ...

    async def known(self, delivery_ids: Collection[str]) -> set[str]:
        """Which of these ids are queued already (in any state)."""
        ...

    async def claim(self, owner: str, *, urls: Collection[str], lease_seconds: float, limit: int) -> list[Delivery]:
        """Lease up to `limit` due deliveries to `urls` to `owner`: no other claim takes them until the lease ends.

        Due: not delivered, not given up, its next attempt time come, no live lease. Oldest due first.
        """
        ...

    async def delivered(self, delivery_id: str) -> None:
        """Record a 2xx answer (whoever holds the lease: it was delivered)."""
        ...

    async def failed(self, delivery_id: str, owner: str, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt and end `owner`'s lease; retry at `retry_at`, or give up when None."""
        ...

    async def deliveries(self, *, limit: int = 100) -> list[Delivery]:
        """The most recent deliveries, newest change first (for tests and operators)."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete deliveries delivered or given up whose change is older than `before`; how many."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


def unusable_tables(version: int, known: int) -> StoreError | None:
    """Why tables of schema `version` cannot be used as they are (opened without upgrading); None when `known`."""
    if version == known:
        return None
    if version > known:
        return StoreError(f"the server's tables have schema {version}; this threadloom knows {known}")
    return StoreError(
        f"the server's tables have schema {version}, older than this threadloom's {known}; "
        "they are left as they are: `threadloom serve` upgrades them"
    )
