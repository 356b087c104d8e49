"""The commands that read or decide open a store as it is: a file that is no store is refused and left unchanged.

Only `threadloom worker` and `serve` own a store: they create it and upgrade its schema. Every other
command refuses a SQLite file or PostgreSQL database without threadloom's tables, and a store of an
older schema, without writing a byte. The owners, and `keys create` (a server's first command, which
may make the file), refuse a SQLite file that holds another program's tables and none of threadloom's.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import cli, launch
from threadloom.cli import app
from threadloom.server import open_tables
from threadloom.store import SQLiteStore
from threadloom.store.sqlite import MIGRATIONS

COMMANDS = [
    ["threads", "ls"],
    ["threads", "show", "th_1"],
    ["threads", "render", "th_1", "--agents", "cli_support:agent"],
    ["threads", "approve", "th_1"],
    ["threads", "reject", "th_1", "--feedback", "no"],
    ["threads", "respond", "th_1", "staging"],
    ["threads", "send-event", "th_1", "ticket_note"],
    ["threads", "cancel", "th_1"],
    ["threads", "fork", "th_1", "--at", "ev_1"],
    ["usage"],
    ["keys", "ls"],
    ["keys", "revoke", "ops"],
]


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADLOOM_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def app_database(path: Path) -> Path:
    """A user's own SQLite file: a table of theirs, a schema version of theirs."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada'); PRAGMA user_version = 7;")
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_sqlite_file_that_is_no_store_is_refused_and_left_unchanged(tmp_path: Path, command: list[str]) -> None:
    path = app_database(tmp_path / "my_app.db")
    before = digest(path)
    code, out, err = invoke(*command, "--store", f"sqlite:///{path}")
    assert (code, out) == (1, "")
    assert err == f"error: {foreign(path)}\n"  # not told that `threadloom worker` would make a store of it
    assert digest(path) == before and sorted(tmp_path.iterdir()) == [path]  # no -wal, no -shm


def foreign(path: Path) -> str:
    """The refusal of `app_database`: its tables are another program's."""
    return (
        f"'{path}' is not a threadloom store: it holds other tables (`users`) and none of threadloom's; "
        "it is left as it is: give threadloom a database of its own"
    )


def test_a_worker_and_keys_create_refuse_a_file_of_another_program_and_leave_it_unchanged(tmp_path: Path) -> None:
    path = app_database(tmp_path / "my_app.db")
    before = digest(path)
    done = cli("worker", "--store", f"sqlite:///{path}", "--agents", "cli_support:agent", "-qq")
    assert (done.returncode, done.stderr) == (1, f"error: {foreign(path)}\n")
    code, out, err = invoke("keys", "create", "ops", "--scopes", "read", "--store", f"sqlite:///{path}")
    assert (code, out, err) == (1, "", f"error: {foreign(path)}\n")
    assert digest(path) == before and sorted(tmp_path.iterdir()) == [path]


def test_keys_create_in_a_new_file_makes_what_serve_then_takes_as_its_store(tmp_path: Path) -> None:
    # The API's quickstart: a key first, then `threadloom serve` on the same file.
    path = tmp_path / "threadloom.db"
    code, out, _ = invoke("keys", "create", "ops", "--scopes", "read", "--store", f"sqlite:///{path}")
    assert code == 0 and out.strip()
    asyncio.run(SQLiteStore(path).aclose())  # what `serve` opens: the file is threadloom's
    assert {"threads", "events", "threadloom_api_keys"} <= tables(path)


@pytest.mark.parametrize("contents", [b"", b"hello, not a database at all\n" * 100])
def test_an_empty_file_or_one_of_text_is_no_store(tmp_path: Path, contents: bytes) -> None:
    path = tmp_path / "threads.db"
    path.write_bytes(contents)
    code, _, err = invoke("threads", "ls", "--store", f"sqlite:///{path}")
    assert code == 1 and "is not a threadloom store" in err
    assert path.read_bytes() == contents and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_path_that_is_not_there_is_refused_and_nothing_is_created(tmp_path: Path, command: list[str]) -> None:
    code, _, err = invoke(*command, "--store", f"sqlite:///{tmp_path}/typo.db")
    assert code == 1 and f"no SQLite store at {tmp_path}/typo.db" in err
    assert list(tmp_path.iterdir()) == []


def test_a_store_of_an_older_schema_is_not_upgraded_by_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "threads.db"
    with monkeypatch.context() as older:
        older.setattr("threadloom.store.sqlite.MIGRATIONS", MIGRATIONS[:2])  # a store of an earlier release
        asyncio.run(SQLiteStore(path).aclose())
    before = digest(path)
    for command in (
        ["threads", "ls"],
        ["usage"],
        ["threads", "approve", "th_1"],
        ["keys", "ls"],
        ["keys", "revoke", "ops"],
    ):
        code, _, err = invoke(*command, "--store", f"sqlite:///{path}")
        assert code == 1, err
        assert f"'{path}' has threadloom store schema 2, older than this threadloom's {len(MIGRATIONS)}" in err
        assert "`threadloom worker` or `threadloom serve` upgrades it" in err
    assert digest(path) == before
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    asyncio.run(SQLiteStore(path).aclose())  # as a worker opens it: upgraded
    code, out, _ = invoke("threads", "ls", "--store", f"sqlite:///{path}", "--json")
    assert (code, out) == (0, "")


def another_schema(path: Path, version: int) -> str:
    """The refusal of a store at `path` of schema `version`, as every command that does not own it says it."""
    known = len(MIGRATIONS)
    if version > known:
        return f"'{path}' has threadloom store schema {version}; this threadloom knows {known}"
    upgrades = "; it is left as it is: `threadloom worker` or `threadloom serve` upgrades it"
    return f"'{path}' has threadloom store schema {version}, older than this threadloom's {known}{upgrades}"


@pytest.mark.parametrize("newer", [False, True], ids=["older", "newer"])
def test_keys_commands_refuse_a_store_of_another_schema_that_has_key_tables(tmp_path: Path, newer: bool) -> None:
    # The server's tables are at this threadloom's schema; the store beside them is not.
    path = tmp_path / "threads.db"
    url = f"sqlite:///{path}"
    asyncio.run(SQLiteStore(path).aclose())
    assert invoke("keys", "create", "ops", "--scopes", "read", "--store", url)[0] == 0
    version = len(MIGRATIONS) + 1 if newer else 2
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {version}")
    before = digest(path)
    for command in (["keys", "ls"], ["keys", "revoke", "ops"], ["keys", "create", "ci", "--scopes", "read"]):
        code, out, err = invoke(*command, "--store", url)
        assert (code, out, err) == (1, "", f"error: {another_schema(path, version)}\n"), command
    assert digest(path) == before


@pytest.mark.parametrize("newer", [False, True], ids=["older", "newer"])
def test_keys_create_adds_no_tables_to_a_store_of_another_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newer: bool
) -> None:
    # Its tables would sit beside a store this threadloom neither reads nor upgrades.
    path = tmp_path / "threads.db"
    with monkeypatch.context() as older:
        older.setattr("threadloom.store.sqlite.MIGRATIONS", MIGRATIONS[:2])  # a store of an earlier release
        asyncio.run(SQLiteStore(path).aclose())
    version = len(MIGRATIONS) + 1 if newer else 2
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {version}")
    before = digest(path)
    code, out, err = invoke("keys", "create", "ops", "--scopes", "read", "--store", f"sqlite:///{path}")
    assert (code, out, err) == (1, "", f"error: {another_schema(path, version)}\n")
    assert digest(path) == before
    assert not any(name.startswith("threadloom_") for name in tables(path))


def test_a_real_store_still_works_and_keys_ls_creates_no_key_tables(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    url = f"sqlite:///{path}"
    thread = launch(url)
    made = tables(path)
    code, out, _ = invoke("threads", "ls", "--store", url)
    assert code == 0 and thread.id in out
    code, out, _ = invoke("keys", "ls", "--store", url)
    assert (code, out) == (
        0,
        "no keys stored; create one with: threadloom keys create NAME --scopes read,write,approve\n",
    )
    code, out, _ = invoke("keys", "revoke", "ops", "--store", url)
    assert code == 1
    assert tables(path) == made  # no server tables made by a command that only reads them
    code, out, _ = invoke("threads", "approve", thread.id, "--store", url)
    assert code == 0 and "is ready" in out


def test_keys_work_on_a_file_that_holds_only_the_server_tables_and_threads_commands_say_what_is_missing(
    tmp_path: Path,
) -> None:
    # Such a file is what `keys create` of an earlier release, or `open_tables` before any store, made.
    url = f"sqlite:///{tmp_path}/threads.db"

    async def make() -> None:
        await (await open_tables(url)).aclose()

    asyncio.run(make())
    assert invoke("keys", "create", "ops", "--scopes", "read", "--store", url)[0] == 0
    code, out, _ = invoke("keys", "ls", "--store", url)
    assert code == 0 and "ops" in out
    code, _, err = invoke("threads", "ls", "--store", url)
    assert code == 1 and "is not a threadloom store" in err and "`threadloom worker`" in err


def test_keys_create_adds_its_tables_to_a_store_that_has_none(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    asyncio.run(SQLiteStore(path).aclose())
    assert not any(name.startswith("threadloom_") for name in tables(path))
    assert invoke("keys", "create", "ops", "--scopes", "read", "--store", f"sqlite:///{path}")[0] == 0
    assert "threadloom_api_keys" in tables(path)


def schema_tables(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return {name for (name,) in rows.fetchall()}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_empty_postgresql_database_is_no_store_and_gets_no_tables(postgres_url: str, command: list[str]) -> None:
    code, _, err = invoke(*command, "--store", postgres_url)
    assert code == 1 and "is not a threadloom store" in err, err
    assert schema_tables(postgres_url) == set()


def test_keys_ls_on_a_postgresql_store_creates_no_key_tables(postgres_url: str) -> None:
    from threadloom.store.postgres import PostgresStore

    async def make() -> None:
        await (await PostgresStore.open(postgres_url)).aclose()

    asyncio.run(make())
    made = schema_tables(postgres_url)
    code, out, _ = invoke("keys", "ls", "--store", postgres_url)
    assert code == 0 and out.startswith("no keys stored")
    assert schema_tables(postgres_url) == made
    code, out, _ = invoke("threads", "ls", "--store", postgres_url, "--json")
    assert (code, out) == (0, "")


@pytest.mark.parametrize("newer", [False, True], ids=["older", "newer"])
def test_keys_commands_refuse_a_postgresql_store_of_another_schema_unchanged(postgres_url: str, newer: bool) -> None:
    import psycopg

    from threadloom.store.postgres import MIGRATIONS as STORE_MIGRATIONS
    from threadloom.store.postgres import PostgresStore

    async def make() -> None:
        await (await PostgresStore.open(postgres_url)).aclose()

    asyncio.run(make())
    assert invoke("keys", "create", "ops", "--scopes", "read", "--store", postgres_url)[0] == 0
    version = len(STORE_MIGRATIONS) + 1 if newer else 1
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE threadloom_schema SET version = %s", (version,))
    made = schema_tables(postgres_url)
    for command in (["keys", "ls"], ["keys", "revoke", "ops"], ["keys", "create", "ci", "--scopes", "read"]):
        code, out, err = invoke(*command, "--store", postgres_url)
        assert (code, out) == (1, ""), err
        assert err.startswith("error: ") and f"has threadloom store schema {version}" in err and err.count("\n") == 1
    assert schema_tables(postgres_url) == made
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM threadloom_schema").fetchall() == [(version,)]
        assert conn.execute("SELECT name FROM threadloom_api_keys").fetchall() == [("ops",)]


def test_keys_create_adds_no_tables_to_a_postgresql_store_of_another_schema(postgres_url: str) -> None:
    import psycopg

    from threadloom.store.postgres import PostgresStore

    async def make() -> None:
        await (await PostgresStore.open(postgres_url)).aclose()

    asyncio.run(make())
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE threadloom_schema SET version = 1")
    made = schema_tables(postgres_url)
    code, out, err = invoke("keys", "create", "ops", "--scopes", "read", "--store", postgres_url)
    assert (code, out) == (1, "") and "has threadloom store schema 1, older than" in err
    assert schema_tables(postgres_url) == made and "threadloom_api_keys" not in made
