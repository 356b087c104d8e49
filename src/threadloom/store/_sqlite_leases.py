"""The SQLite store's leases: a claim, a renewal, a release, a thread set aside.

Each function is work for the store's connection (`db`, its last parameter). Lease times are ISO 8601
text in UTC, which sorts as the times do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from ._codec import format_time

__all__ = ["claim", "release", "renew", "set_aside"]


def claim(
    owner: str, lease_seconds: float, limit: int, agents: Collection[str] | None, db: sqlite3.Connection
) -> list[str]:
    """Lease the oldest runnable threads to `owner` (see `ThreadStore.claim`).

    `BEGIN IMMEDIATE` makes the pick and the lease one step across processes.
    """
    now = datetime.now(UTC)
    expires = format_time(now + timedelta(seconds=lease_seconds))
    serves = "" if agents is None else f" AND agent IN ({', '.join('?' * len(agents))})"
    db.execute("BEGIN IMMEDIATE")
    try:
        ids = [
            r[0]
            for r in db.execute(
                "SELECT thread_id FROM threads WHERE status = 'ready' AND unreadable IS NULL"
                " AND (lease_expires IS NULL OR lease_expires <= ?) AND (retry_at IS NULL OR retry_at <= ?)"
                f"{serves} ORDER BY updated_at LIMIT ?",
                (format_time(now), format_time(now), *(agents or ()), limit),
            )
        ]
        db.executemany(
            "UPDATE threads SET lease_owner = ?, lease_expires = ? WHERE thread_id = ?",
            [(owner, expires, i) for i in ids],
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return ids


def renew(thread_id: str, owner: str, lease_seconds: float, db: sqlite3.Connection) -> bool:
    """Extend `owner`'s live lease; whether it was still live (see `ThreadStore.renew`)."""
    now = datetime.now(UTC)
    cursor = db.execute(
        "UPDATE threads SET lease_expires = ? WHERE thread_id = ? AND lease_owner = ? AND lease_expires > ?",
        (format_time(now + timedelta(seconds=lease_seconds)), thread_id, owner, format_time(now)),
    )
    return cursor.rowcount == 1


def release(thread_id: str, owner: str, db: sqlite3.Connection) -> bool:
    """End `owner`'s lease; whether the thread is now claimable (`ready`)."""
    released = db.execute(
        "UPDATE threads SET lease_owner = NULL, lease_expires = NULL WHERE thread_id = ? AND lease_owner = ?"
        " RETURNING status",
        (thread_id, owner),
    ).fetchone()
    return released is not None and released[0] == "ready"


def set_aside(thread_id: str, reason: str, db: sqlite3.Connection) -> None:
    """Mark the thread unreadable and end any lease on it (see `ThreadStore.set_aside`)."""
    db.execute(
        "UPDATE threads SET unreadable = ?, lease_owner = NULL, lease_expires = NULL WHERE thread_id = ?",
        (reason, thread_id),
    )
