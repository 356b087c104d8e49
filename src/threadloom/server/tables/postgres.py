"""`PostgresTables`: the server's tables in the store's PostgreSQL database, on a small pool of their own.

Several server processes share one database (`threadloom serve --no-worker` beside workers): a claim
of due webhooks is one `UPDATE ... WHERE delivery_id IN (SELECT ... FOR UPDATE SKIP LOCKED)`, so two
processes claiming at once take different deliveries and a leased one is never sent twice at once.
Lease times are the database's clock (`now()`), like the store's thread leases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

try:
    import psycopg
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the server's PostgreSQL tables need the `postgres` extra: pip install 'threadloom[postgres]'"
    ) from exc

from ...exceptions import StoreError, UserError
from ...store._postgres_schema import MIGRATIONS as STORE_MIGRATIONS
from ...store._schemas import not_a_store, unusable_schema
from ...store.base import masked, masked_url
from .base import Delivery, StoredKey, scopes_text, stored_key, unusable_tables

__all__ = ["MIGRATIONS", "PostgresTables", "check_store", "stored"]

MIGRATIONS: tuple[str, ...] = (
    # 1: API keys (the SHA-256 of the secret, hex), settings, and the webhook outbox.
    """
    CREATE TABLE threadloom_api_keys (
        name TEXT PRIMARY KEY,
        scopes TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE threadloom_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE threadloom_outbox (
        delivery_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at TIMESTAMPTZ,
        delivered_at TIMESTAMPTZ,
        last_error TEXT,
        lease_owner TEXT,
        lease_expires TIMESTAMPTZ
    );
    CREATE INDEX threadloom_outbox_due ON threadloom_outbox (next_attempt_at, at) WHERE next_attempt_at IS NOT NULL;
    CREATE INDEX threadloom_outbox_at ON threadloom_outbox (at);
    """,
)
"""Forward-only migrations; `threadloom_server_schema.version` records how many are applied."""

_MIGRATION_LOCK = 0x746C7461626C6573  # "tltables": one migrator at a time, apart from the store's own lock
_COLUMNS = "delivery_id, url, body, at, attempts, next_attempt_at, delivered_at, last_error"
_CLAIM = (
    "UPDATE threadloom_outbox SET lease_owner = %s, lease_expires = now() + make_interval(secs => %s)"
    " WHERE delivery_id IN (SELECT delivery_id FROM threadloom_outbox WHERE next_attempt_at <= now()"
    " AND (lease_expires IS NULL OR lease_expires <= now()) AND url = ANY(%s)"
    " ORDER BY next_attempt_at, at LIMIT %s FOR UPDATE SKIP LOCKED)"
    f" RETURNING {_COLUMNS}"
)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        row[0],
        row[1],
        row[2],
        row[3].astimezone(UTC),
        attempts=row[4],
        next_attempt_at=_utc(row[5]),
        delivered_at=_utc(row[6]),
        last_error=row[7],
    )


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await cur.execute("CREATE TABLE IF NOT EXISTS threadloom_server_schema (version INTEGER NOT NULL)")
        await cur.execute("SELECT version FROM threadloom_server_schema")
        row = await cur.fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StoreError(f"the server's tables have schema {version}; this threadloom knows {len(MIGRATIONS)}")
        for script in MIGRATIONS[version:]:
            for statement in filter(str.strip, script.split(";")):
                await cur.execute(statement.encode())
        await cur.execute("DELETE FROM threadloom_server_schema")
        await cur.execute("INSERT INTO threadloom_server_schema VALUES (%s)", (len(MIGRATIONS),))


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    """Refuse the tables unless they are there at this threadloom's schema; nothing is written."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT version FROM threadloom_server_schema")
        row = await cur.fetchone()
    problem = unusable_tables(0 if row is None else int(row[0]), len(MIGRATIONS))
    if problem is not None:
        raise problem


async def _look(url: str) -> tuple[bool, bool]:
    """Whether the database holds the server's tables, and a store; a store of another schema is refused."""
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5) as conn:
            cur = await conn.execute(
                "SELECT to_regclass('threadloom_server_schema') IS NOT NULL, to_regclass('threadloom_schema') IS NOT NULL"
            )
            found = await cur.fetchone()
            tables, store = found or (False, False)
            version = 0
            if store:
                row = await (await conn.execute("SELECT version FROM threadloom_schema")).fetchone()
                version = 0 if row is None else int(row[0])
    except psycopg.Error as exc:
        reason = masked(" ".join(str(exc).split()), url)
        raise StoreError(f"cannot open the server's tables in {masked_url(url)}: {reason}") from None
    # Refused as the other reading commands refuse it: a store of another schema is neither read nor written beside.
    problem = unusable_schema(masked_url(url), version, len(STORE_MIGRATIONS)) if store else None
    if problem is not None:
        raise problem
    return tables, store


async def check_store(url: str) -> None:
    """Refuse, unchanged, a database that holds a store of another schema; one without a store passes.

    Raises:
        StoreError: A store of another schema, or a database that cannot be reached.
    """
    await _look(url)


async def stored(url: str) -> PostgresTables | None:
    """The server's tables in the database as they are; None in a store that has none yet. Nothing is created.

    Raises:
        StoreError: The database cannot be reached, holds none of threadloom's tables (neither the
            store's nor the server's; an empty database too), or a store or server tables of another schema.
    """
    tables, store = await _look(url)
    if tables:
        return await PostgresTables.open(url, upgrade=False)
    if store:
        return None
    raise not_a_store(masked_url(url))


class PostgresTables:
    """The server's tables in PostgreSQL. Build one with `await PostgresTables.open(url)`."""

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], url: str) -> None:
        """Wrap an open pool; use `PostgresTables.open(url)` instead."""
        self._pool = pool
        self.url = url

    @classmethod
    async def open(
        cls, url: str, *, max_connections: int = 4, connect_timeout: float = 5, upgrade: bool = True
    ) -> PostgresTables:
        """Connect, create or migrate the tables, and return them.

        Args:
            url: A libpq URL (the store's).
            max_connections: The pool's size.
            connect_timeout: Seconds to wait for the server before giving up.
            upgrade: False opens the tables as they are: nothing is created or migrated (see `stored`).

        Raises:
            StoreError: The database cannot be reached (the URL's password masked), or its tables are
                of a newer threadloom; without `upgrade`, they are not there or of another schema.
        """
        try:
            first = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
            try:
                await (_migrate(first) if upgrade else _check(first))
            finally:
                await first.close()
        except psycopg.Error as exc:
            reason = masked(" ".join(str(exc).split()), url)
            raise StoreError(f"cannot open the server's tables in {masked_url(url)}: {reason}") from None
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url, min_size=1, max_size=max_connections, open=False, kwargs={"autocommit": True}
        )
        try:
            await pool.open(wait=True, timeout=connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot open the server's tables in {masked_url(url)}: {masked(str(exc), url)}") from None
        return cls(pool, url)

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (autocommit: its own transaction); a database error is a `StoreError`."""
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(sql.encode(), params)
                return await cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:  # PoolTimeout (no connection free) is one too
            raise StoreError(f"the server's tables in {masked_url(self.url)}: {masked(str(exc), self.url)}") from exc

    async def add_key(self, key: StoredKey) -> None:
        """See `Tables.add_key`."""
        added = await self._rows(
            "INSERT INTO threadloom_api_keys VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING name",
            (key.name, scopes_text(key.scopes), key.digest.hex(), key.created_at),
        )
        if not added:
            raise UserError(f"a key named {key.name!r} exists already")

    async def keys(self) -> list[StoredKey]:
        """See `Tables.keys`."""
        rows = await self._rows("SELECT name, scopes, digest, created_at FROM threadloom_api_keys ORDER BY name")
        return [stored_key(r[0], r[1], r[2], r[3].astimezone(UTC)) for r in rows]

    async def remove_key(self, name: str) -> bool:
        """See `Tables.remove_key`."""
        return bool(await self._rows("DELETE FROM threadloom_api_keys WHERE name = %s RETURNING name", (name,)))

    async def get_setting(self, name: str) -> str | None:
        """See `Tables.get_setting`."""
        rows = await self._rows("SELECT value FROM threadloom_settings WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    async def put_setting(self, name: str, value: str) -> None:
        """See `Tables.put_setting`."""
        await self._rows(
            "INSERT INTO threadloom_settings VALUES (%s, %s, now())"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, value),
        )

    async def add_setting(self, name: str, value: str) -> str:
        """See `Tables.add_setting`: one statement, whichever process writes first wins."""
        rows = await self._rows(
            "WITH added AS (INSERT INTO threadloom_settings VALUES (%s, %s, now()) ON CONFLICT DO NOTHING"
            " RETURNING value) SELECT value FROM added UNION ALL"
            " SELECT value FROM threadloom_settings WHERE name = %s",
            (name, value, name),
        )
        # A statement sees the table as it was when it began: the row it adds is only in `added`.
        return str(rows[0][0])

    async def queue(self, deliveries: Sequence[Delivery]) -> int:
        """See `Tables.queue`."""
        if not deliveries:
            return 0
        rows = await self._rows(
            "INSERT INTO threadloom_outbox (delivery_id, url, body, at, attempts, next_attempt_at)"
            " SELECT i, u, b, a, 0, now() FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " AS v(i, u, b, a) ON CONFLICT DO NOTHING RETURNING delivery_id",
            (
                [d.delivery_id for d in deliveries],
                [d.url for d in deliveries],
                [d.body for d in deliveries],
                [d.at for d in deliveries],
            ),
        )
        return len(rows)

    async def known(self, delivery_ids: Collection[str]) -> set[str]:
        """See `Tables.known`."""
        if not delivery_ids:
            return set()
        rows = await self._rows(
            "SELECT delivery_id FROM threadloom_outbox WHERE delivery_id = ANY(%s)", (list(delivery_ids),)
        )
        return {str(r[0]) for r in rows}

    async def claim(self, owner: str, *, urls: Collection[str], lease_seconds: float, limit: int) -> list[Delivery]:
        """See `Tables.claim`."""
        if not urls or limit <= 0:
            return []
        claimed = [_delivery(r) for r in await self._rows(_CLAIM, (owner, lease_seconds, list(urls), limit))]
        return sorted(claimed, key=lambda d: (d.next_attempt_at or d.at, d.at, d.delivery_id))

    async def delivered(self, delivery_id: str) -> None:
        """See `Tables.delivered`."""
        await self._rows(
            "UPDATE threadloom_outbox SET attempts = attempts + 1, next_attempt_at = NULL, delivered_at = now(),"
            " lease_owner = NULL, lease_expires = NULL WHERE delivery_id = %s AND delivered_at IS NULL",
            (delivery_id,),
        )

    async def failed(self, delivery_id: str, owner: str, *, error: str, retry_at: datetime | None) -> None:
        """See `Tables.failed`."""
        await self._rows(
            "UPDATE threadloom_outbox SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s,"
            " lease_owner = NULL, lease_expires = NULL"
            " WHERE delivery_id = %s AND lease_owner = %s AND delivered_at IS NULL",
            (retry_at, error, delivery_id, owner),
        )

    async def deliveries(self, *, limit: int = 100) -> list[Delivery]:
        """See `Tables.deliveries`."""
        sql = f"SELECT {_COLUMNS} FROM threadloom_outbox ORDER BY at DESC, delivery_id DESC LIMIT %s"
        return [_delivery(r) for r in await self._rows(sql, (limit,))]

    async def prune(self, before: datetime) -> int:
        """See `Tables.prune`."""
        rows = await self._rows(
            "DELETE FROM threadloom_outbox WHERE at < %s AND next_attempt_at IS NULL RETURNING delivery_id", (before,)
        )
        return len(rows)

    async def aclose(self) -> None:
        """Close the pool."""
        await self._pool.close()
