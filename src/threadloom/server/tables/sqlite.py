"""`SQLiteTables`: the server's tables in the SQLite file of the store (`sqlite:///path.db`), on a connection of their own.

Like the store: WAL, `synchronous=FULL` (a queued webhook survives a power cut), a 30-second
busy timeout, and one connection used from one thread of its own, so the event loop never waits
on the disk. Times are fixed-width UTC text, so text order is time order. The tables keep their
schema version in a table of their own: `PRAGMA user_version` is the store's.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from ...exceptions import StoreError, UserError
from ...store._codec import format_time, parse_time
from ...store._schemas import unusable_schema
from ...store._sqlite_schema import MIGRATIONS as STORE_MIGRATIONS
from ...store._sqlite_schema import STORE_TABLES, file_uri, look, no_store, refuse_foreign, shown_path, use_wal
from .base import Delivery, StoredKey, scopes_text, stored_key, unusable_tables

__all__ = ["MIGRATIONS", "SQLiteTables", "check_store", "stored"]

_T = TypeVar("_T")

MIGRATIONS: tuple[str, ...] = (
    # 1: API keys (the SHA-256 of the secret, hex), settings, and the webhook outbox.
    """
    CREATE TABLE threadloom_api_keys (
        name TEXT PRIMARY KEY,
        scopes TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE threadloom_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE threadloom_outbox (
        delivery_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT,
        delivered_at TEXT,
        last_error TEXT,
        lease_owner TEXT,
        lease_expires TEXT
    );
    CREATE INDEX threadloom_outbox_due ON threadloom_outbox (next_attempt_at, at) WHERE next_attempt_at IS NOT NULL;
    CREATE INDEX threadloom_outbox_at ON threadloom_outbox (at);
    """,
)
"""Forward-only migrations; `threadloom_server_schema.version` records how many are applied."""

_BUSY_SECONDS = 30.0
_IN_CHUNK = 500  # ids per `IN (...)`: under SQLite's 999 parameters
_COLUMNS = "delivery_id, url, body, at, attempts, next_attempt_at, delivered_at, last_error"


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        row[0],
        row[1],
        row[2],
        parse_time(row[3]),
        attempts=row[4],
        next_attempt_at=parse_time(row[5]) if row[5] else None,
        delivered_at=parse_time(row[6]) if row[6] else None,
        last_error=row[7],
    )


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS threadloom_server_schema (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM threadloom_server_schema").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StoreError(f"the server's tables have schema {version}; this threadloom knows {len(MIGRATIONS)}")
        for script in MIGRATIONS[version:]:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
        db.execute("DELETE FROM threadloom_server_schema")
        db.execute("INSERT INTO threadloom_server_schema VALUES (?)", (len(MIGRATIONS),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _check(db: sqlite3.Connection) -> None:
    """Refuse the tables unless they are there at this threadloom's schema; nothing is written."""
    row = db.execute("SELECT version FROM threadloom_server_schema").fetchone()
    problem = unusable_tables(0 if row is None else int(row[0]), len(MIGRATIONS))
    if problem is not None:
        raise problem


def _current_store(path: str, version: int, names: frozenset[str]) -> bool:
    """Whether the file (of this `user_version` and these tables) holds a store; one of another schema is refused."""
    is_store = bool(version) and STORE_TABLES <= names
    # Refused as the other reading commands refuse it: a store of another schema is neither read nor written beside.
    problem = unusable_schema(shown_path(path), version, len(STORE_MIGRATIONS)) if is_store else None
    if problem is not None:
        raise problem
    return is_store


async def check_store(path: str | Path) -> None:
    """Refuse, unchanged, a file that holds a store of another schema; a new file, or one without a store, passes.

    Raises:
        StoreError: A store of another schema, another program's file, or one that cannot be read.
    """

    def check() -> None:
        refuse_foreign(str(path))  # first: a file that is no database says so as `open` does
        if Path(path).is_file():
            _current_store(str(path), *look(str(path)))

    await asyncio.to_thread(check)


async def stored(path: str | Path) -> SQLiteTables | None:
    """The server's tables in the file as they are; None in a store that has none yet. Nothing is created.

    Raises:
        StoreError: No file, not a SQLite database, none of threadloom's tables (neither the
            store's nor the server's), or a store or server tables of another schema.
    """
    version, names = await asyncio.to_thread(look, str(path))
    is_store = _current_store(str(path), version, names)
    if "threadloom_server_schema" in names:
        return await SQLiteTables.open(path, upgrade=False)
    if is_store:
        return None
    raise no_store(shown_path(str(path)), names)


class SQLiteTables:
    """The server's tables in one SQLite file. Build one with `await SQLiteTables.open(path)`."""

    def __init__(self, db: sqlite3.Connection, path: str, thread: ThreadPoolExecutor) -> None:
        """Wrap an open, migrated connection; use `SQLiteTables.open(path)` instead."""
        self._db = db
        self.path = path
        self._thread = thread

    @classmethod
    async def open(cls, path: str | Path, *, upgrade: bool = True) -> SQLiteTables:
        """Open (creating if needed) the file at `path` and its server tables.

        Args:
            path: The store's SQLite file.
            upgrade: False opens the tables as they are: nothing is created or migrated (see `stored`).

        Raises:
            StoreError: The file cannot be opened, or its tables are of a newer threadloom; with
                `upgrade`, it holds another program's tables and none of threadloom's (it is left
                unchanged); without, the file or its tables are not there, or of another schema.
        """
        if upgrade:  # before anything writes (WAL mode alone would change a file), as the store does
            await asyncio.to_thread(refuse_foreign, str(path))
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadloom-tables")
        # Not `upgrade`: a `mode=rw` URI, which never creates the file.
        where = str(path) if upgrade else file_uri(str(path), "rw")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(
                where, check_same_thread=False, isolation_level=None, timeout=_BUSY_SECONDS, uri=not upgrade
            )
            try:
                use_wal(db, _BUSY_SECONDS)
                db.execute("PRAGMA synchronous=FULL")
                if upgrade:
                    _migrate(db)
                else:
                    _check(db)
            except BaseException:
                db.close()
                raise
            return db

        try:
            db = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except sqlite3.Error as exc:
            thread.shutdown()
            raise StoreError(f"cannot open the server's tables in {str(path)!r}: {exc}") from exc
        except BaseException:
            thread.shutdown()
            raise
        return cls(db, str(path), thread)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        # Every call runs on the one thread the connection is used from, one at a time.
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, work, self._db)
        except sqlite3.Error as exc:
            raise StoreError(f"the server's tables in {self.path!r}: {exc}") from exc

    async def add_key(self, key: StoredKey) -> None:
        """See `Tables.add_key`."""
        row = (key.name, scopes_text(key.scopes), key.digest.hex(), format_time(key.created_at))

        def insert(db: sqlite3.Connection) -> int:
            return db.execute(
                "INSERT INTO threadloom_api_keys VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", row
            ).rowcount

        if await self._run(insert) == 0:
            raise UserError(f"a key named {key.name!r} exists already")

    async def keys(self) -> list[StoredKey]:
        """See `Tables.keys`."""

        def read(db: sqlite3.Connection) -> list[StoredKey]:
            rows = db.execute("SELECT name, scopes, digest, created_at FROM threadloom_api_keys ORDER BY name")
            return [stored_key(r[0], r[1], r[2], parse_time(r[3])) for r in rows.fetchall()]

        return await self._run(read)

    async def remove_key(self, name: str) -> bool:
        """See `Tables.remove_key`."""
        return await self._run(
            lambda db: db.execute("DELETE FROM threadloom_api_keys WHERE name = ?", (name,)).rowcount > 0
        )

    async def get_setting(self, name: str) -> str | None:
        """See `Tables.get_setting`."""

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM threadloom_settings WHERE name = ?", (name,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(read)

    async def put_setting(self, name: str, value: str) -> None:
        """See `Tables.put_setting`."""
        row = (name, value, format_time(datetime.now(UTC)))
        await self._run(
            lambda db: db.execute(
                "INSERT INTO threadloom_settings VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                row,
            )
        )

    async def add_setting(self, name: str, value: str) -> str:
        """See `Tables.add_setting`."""
        row = (name, value, format_time(datetime.now(UTC)))

        def add(db: sqlite3.Connection) -> str:
            db.execute("INSERT INTO threadloom_settings VALUES (?, ?, ?) ON CONFLICT DO NOTHING", row)
            return str(db.execute("SELECT value FROM threadloom_settings WHERE name = ?", (name,)).fetchone()[0])

        return await self._run(add)

    async def queue(self, deliveries: Sequence[Delivery]) -> int:
        """See `Tables.queue`."""
        now = format_time(datetime.now(UTC))
        rows = [(d.delivery_id, d.url, d.body, format_time(d.at), now) for d in deliveries]

        def insert(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                count = db.executemany(
                    "INSERT INTO threadloom_outbox (delivery_id, url, body, at, attempts, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                    rows,
                ).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return count

        return await self._run(insert) if rows else 0

    async def known(self, delivery_ids: Collection[str]) -> set[str]:
        """See `Tables.known`."""
        ids = list(delivery_ids)

        def read(db: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT delivery_id FROM threadloom_outbox WHERE delivery_id IN ({marks})"
                found.update(r[0] for r in db.execute(sql, chunk).fetchall())
            return found

        return await self._run(read) if ids else set()

    async def claim(self, owner: str, *, urls: Collection[str], lease_seconds: float, limit: int) -> list[Delivery]:
        """See `Tables.claim`: one statement, so SQLite's write lock makes it atomic across processes."""
        wanted = list(urls)[:_IN_CHUNK]
        if not wanted or limit <= 0:
            return []
        now = datetime.now(UTC)
        marks = ", ".join("?" * len(wanted))
        sql = (
            "UPDATE threadloom_outbox SET lease_owner = ?, lease_expires = ? WHERE delivery_id IN ("
            " SELECT delivery_id FROM threadloom_outbox WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?"
            f" AND (lease_expires IS NULL OR lease_expires <= ?) AND url IN ({marks})"
            f" ORDER BY next_attempt_at, at LIMIT ?) RETURNING {_COLUMNS}"
        )
        expires = format_time(now + timedelta(seconds=lease_seconds))
        params = (owner, expires, format_time(now), format_time(now), *wanted, limit)
        claimed = [_delivery(r) for r in await self._run(lambda db: db.execute(sql, params).fetchall())]
        return sorted(claimed, key=lambda d: (d.next_attempt_at or now, d.at, d.delivery_id))

    async def delivered(self, delivery_id: str) -> None:
        """See `Tables.delivered`."""
        params = (format_time(datetime.now(UTC)), delivery_id)
        await self._run(
            lambda db: db.execute(
                "UPDATE threadloom_outbox SET attempts = attempts + 1, next_attempt_at = NULL, delivered_at = ?,"
                " lease_owner = NULL, lease_expires = NULL WHERE delivery_id = ? AND delivered_at IS NULL",
                params,
            )
        )

    async def failed(self, delivery_id: str, owner: str, *, error: str, retry_at: datetime | None) -> None:
        """See `Tables.failed`."""
        params = (retry_at and format_time(retry_at), error, delivery_id, owner)
        await self._run(
            lambda db: db.execute(
                "UPDATE threadloom_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " lease_owner = NULL, lease_expires = NULL"
                " WHERE delivery_id = ? AND lease_owner = ? AND delivered_at IS NULL",
                params,
            )
        )

    async def deliveries(self, *, limit: int = 100) -> list[Delivery]:
        """See `Tables.deliveries`."""
        sql = f"SELECT {_COLUMNS} FROM threadloom_outbox ORDER BY at DESC, delivery_id DESC LIMIT ?"
        return [_delivery(r) for r in await self._run(lambda db: db.execute(sql, (limit,)).fetchall())]

    async def prune(self, before: datetime) -> int:
        """See `Tables.prune`."""
        params = (format_time(before),)
        return await self._run(
            lambda db: (
                db.execute("DELETE FROM threadloom_outbox WHERE at < ? AND next_attempt_at IS NULL", params).rowcount
            )
        )

    async def aclose(self) -> None:
        """Close the connection and its thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown()
