"""Shared fixtures: a store of each kind (memory, SQLite, PostgreSQL: the given server or a throwaway one)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from _postgres import DEBIAN_BINDIRS, server_bindir, throwaway_cluster
from threadloom.store import MemoryStore, SQLiteStore, ThreadStore

POSTGRES_ENV = "THREADLOOM_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of the session's PostgreSQL database: `THREADLOOM_TEST_POSTGRES_URL` when set, else a
    throwaway cluster started from the machine's server binaries; skipped only without PostgreSQL."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        yield url
        return
    bindir = server_bindir()
    if bindir is None:
        reason = (
            f"no PostgreSQL here: {POSTGRES_ENV} is not set and neither the PATH nor {DEBIAN_BINDIRS}"
            " has initdb and pg_ctl to start a throwaway cluster"
        )
        if os.environ.get("THREADLOOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (THREADLOOM_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    with throwaway_cluster(bindir) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema of the test database, dropped afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    separator = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["memory", "sqlite", "sqlite-normal", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[ThreadStore]:
    """One store of each kind, empty (SQLite also with `synchronous=NORMAL`, whose appends commit at once)."""
    made: ThreadStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(f"{tmp_path}/threads.db")
    elif request.param == "sqlite-normal":
        made = SQLiteStore(f"{tmp_path}/threads.db", synchronous="NORMAL")
    else:
        from threadloom.store.postgres import PostgresStore

        made = await PostgresStore.open(request.getfixturevalue("postgres_url"))
    yield made
    await made.aclose()
