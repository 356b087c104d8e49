"""`MemoryTables` (`memory://`): the `Tables` contract in dicts, for tests and the demo. Nothing survives the process."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from ...exceptions import UserError
from .base import Delivery, StoredKey

__all__ = ["MemoryTables"]


class MemoryTables:
    """Keys, settings and the outbox of one process, with the same rules as the durable backends."""

    def __init__(self) -> None:
        """Empty tables."""
        self._keys: dict[str, StoredKey] = {}
        self._settings: dict[str, str] = {}
        self._outbox: dict[str, Delivery] = {}
        self._leases: dict[str, tuple[str, datetime]] = {}  # delivery id -> (owner, expires)

    async def add_key(self, key: StoredKey) -> None:
        """See `Tables.add_key`."""
        if key.name in self._keys:
            raise UserError(f"a key named {key.name!r} exists already")
        self._keys[key.name] = key

    async def keys(self) -> list[StoredKey]:
        """See `Tables.keys`."""
        return [self._keys[name] for name in sorted(self._keys)]

    async def remove_key(self, name: str) -> bool:
        """See `Tables.remove_key`."""
        return self._keys.pop(name, None) is not None

    async def get_setting(self, name: str) -> str | None:
        """See `Tables.get_setting`."""
        return self._settings.get(name)

    async def put_setting(self, name: str, value: str) -> None:
        """See `Tables.put_setting`."""
        self._settings[name] = value

    async def add_setting(self, name: str, value: str) -> str:
        """See `Tables.add_setting`."""
        return self._settings.setdefault(name, value)

    async def queue(self, deliveries: Sequence[Delivery]) -> int:
        """See `Tables.queue`."""
        now = datetime.now(UTC)
        new = 0
        for delivery in deliveries:
            if delivery.delivery_id not in self._outbox:
                self._outbox[delivery.delivery_id] = dataclasses.replace(
                    delivery, attempts=0, next_attempt_at=now, delivered_at=None, last_error=None
                )
                new += 1
        return new

    async def known(self, delivery_ids: Collection[str]) -> set[str]:
        """See `Tables.known`."""
        return {i for i in delivery_ids if i in self._outbox}

    async def claim(self, owner: str, *, urls: Collection[str], lease_seconds: float, limit: int) -> list[Delivery]:
        """See `Tables.claim`."""
        now = datetime.now(UTC)
        due = [
            d
            for d in self._outbox.values()
            if d.url in urls
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and d.delivered_at is None
            and (d.delivery_id not in self._leases or self._leases[d.delivery_id][1] <= now)
        ]
        due.sort(key=lambda d: (d.next_attempt_at or now, d.at, d.delivery_id))
        for delivery in due[:limit]:
            self._leases[delivery.delivery_id] = (owner, now + timedelta(seconds=lease_seconds))
        return due[:limit]

    async def delivered(self, delivery_id: str) -> None:
        """See `Tables.delivered`."""
        delivery = self._outbox[delivery_id]
        if delivery.delivered_at is None:
            self._outbox[delivery_id] = dataclasses.replace(
                delivery, attempts=delivery.attempts + 1, next_attempt_at=None, delivered_at=datetime.now(UTC)
            )
        self._leases.pop(delivery_id, None)

    async def failed(self, delivery_id: str, owner: str, *, error: str, retry_at: datetime | None) -> None:
        """See `Tables.failed`."""
        delivery = self._outbox[delivery_id]
        if self._leases.get(delivery_id, ("", None))[0] != owner or delivery.delivered_at is not None:
            return  # the lease ended and another claim took it (or it got through): theirs to record
        self._outbox[delivery_id] = dataclasses.replace(
            delivery, attempts=delivery.attempts + 1, next_attempt_at=retry_at, last_error=error
        )
        del self._leases[delivery_id]

    async def deliveries(self, *, limit: int = 100) -> list[Delivery]:
        """See `Tables.deliveries`."""
        return sorted(self._outbox.values(), key=lambda d: (d.at, d.delivery_id), reverse=True)[:limit]

    async def prune(self, before: datetime) -> int:
        """See `Tables.prune`."""
        old = [i for i, d in self._outbox.items() if d.at < before and d.next_attempt_at is None]
        for delivery_id in old:
            del self._outbox[delivery_id]
        return len(old)

    async def aclose(self) -> None:
        """Nothing to close."""
