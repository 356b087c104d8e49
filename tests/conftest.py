"""Shared fixtures: a store of each kind (memory, SQLite, the machine's PostgreSQL)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from threadloom.store import MemoryStore, SQLiteStore, ThreadStore

POSTGRES_ENV = "THREADLOOM_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of the test database, dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        reason = f"{POSTGRES_ENV} is not set: the PostgreSQL store tests need a server"
        if os.environ.get("THREADLOOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (THREADLOOM_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    import psycopg
    from psycopg import sql

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[ThreadStore]:
    """One store of each kind, empty."""
    made: ThreadStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(f"{tmp_path}/threads.db")
    else:
        from threadloom.store.postgres import PostgresStore

        made = await PostgresStore.open(request.getfixturevalue("postgres_url"))
    yield made
    await made.aclose()
