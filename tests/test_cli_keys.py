"""`threadloom keys create | ls | revoke`: a secret printed once, only its digest stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import cli
from threadloom.cli import app
from threadloom.server import KeyRing, open_tables
from threadloom.server._keys import digest
from threadloom.store import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store (as `threadloom worker` or `serve` makes it: `keys create` makes none), the commands' default."""
    url = f"sqlite:///{tmp_path}/threads.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    make_store(url)
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "80")
    return url


def make_store(url: str) -> None:
    async def main() -> None:
        await (await open_store(url)).aclose()

    asyncio.run(main())


def keys(*args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, ["keys", *args])
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def find(url: str, secret: str) -> str | None:
    """The name of the stored key this secret belongs to, as a server's key ring finds it."""

    async def main() -> str | None:
        tables = await open_tables(url)
        try:
            key = await KeyRing(stored=tables.keys).find(secret)
            return None if key is None else key.name
        finally:
            await tables.aclose()

    return asyncio.run(main())


def test_create_prints_the_secret_once_and_a_server_accepts_it(url: str) -> None:
    out, err = keys("create", "ops", "--scopes", "approve,read")
    secret = out.strip()
    assert secret.startswith("tlk_") and len(secret) > 40 and out == secret + "\n"
    assert "created key 'ops' (read, approve)" in err and "shown only once" in err
    assert find(url, secret) == "ops"
    listed, _ = keys("ls")
    assert "ops" in listed and "read, approve" in listed and secret not in listed


def test_only_the_digest_is_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "threads.db"
    make_store(f"sqlite:///{path}")
    monkeypatch.setenv("THREADLOOM_STORE", f"sqlite:///{path}")
    secret = keys("create", "ops", "--scopes", "read")[0].strip()
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT * FROM threadloom_api_keys").fetchall()
    assert len(rows) == 1 and digest(secret).hex() in rows[0]
    assert not any(secret in str(value) for value in rows[0])


def test_a_name_taken_is_refused_and_the_first_key_still_works(url: str) -> None:
    first = keys("create", "ops", "--scopes", "read")[0].strip()
    out, err = keys("create", "ops", "--scopes", "read,write,approve", code=1)
    assert out == "" and "a key named 'ops' exists already" in err and "threadloom keys revoke ops" in err
    assert find(url, first) == "ops"
    assert [json.loads(line)["scopes"] for line in keys("ls", "--json")[0].splitlines()] == [["read"]]


def test_ls_lists_names_scopes_and_when_never_secrets(url: str) -> None:
    secrets = [
        keys("create", name, "--scopes", scopes)[0].strip() for name, scopes in [("ci", "read"), ("ops", "read+write")]
    ]
    rows = [json.loads(line) for line in keys("ls", "--json")[0].splitlines()]
    assert [(r["name"], r["scopes"]) for r in rows] == [("ci", ["read"]), ("ops", ["read", "write"])]
    assert all(r["created_at"].endswith("+00:00") for r in rows)
    table = keys("ls")[0]
    assert all(secret not in table for secret in secrets) and " UTC" in table


def test_revoke_removes_the_key(url: str) -> None:
    secret = keys("create", "ops", "--scopes", "read")[0].strip()
    assert keys("revoke", "ops")[0] == "revoked key 'ops'\n"
    assert find(url, secret) is None
    assert "no keys stored" in keys("ls")[0]
    assert "no key named 'ops'" in keys("revoke", "ops", code=1)[1]


def test_bad_scopes_names_and_stores_are_misuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLOOM_STORE", f"sqlite:///{tmp_path}/threads.db")
    assert "unknown scope 'admin'" in keys("create", "ops", "--scopes", "read,admin", code=2)[1]
    assert "at least one scope" in keys("create", "ops", "--scopes", ",", code=2)[1]
    assert "a key's name is" in keys("create", "has space", "--scopes", "read", code=2)[1]
    assert "keeps nothing" in keys("create", "ops", "--scopes", "read", "--store", "memory://", code=2)[1]
    assert "unknown store URL" in keys("create", "ops", "--scopes", "read", "--store", "mysql://x", code=2)[1]
    assert "no SQLite store at" in keys("ls", "--store", f"sqlite:///{tmp_path}/elsewhere.db", code=1)[1]


def test_the_real_command(url: str) -> None:
    made = cli("keys", "create", "deploy-bot", "--scopes", "read,approve", "--store", url)
    assert made.returncode == 0, made.stderr
    assert find(url, made.stdout.strip()) == "deploy-bot"
    listed = cli("keys", "ls", "--store", url)
    assert listed.returncode == 0 and "deploy-bot" in listed.stdout and made.stdout.strip() not in listed.stdout
    assert cli("keys", "revoke", "deploy-bot", "--store", url).returncode == 0


def test_the_revoke_it_suggests_names_the_store_it_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pasted without --store, the suggested command revoked a key in the default store.
    monkeypatch.delenv("THREADLOOM_STORE", raising=False)
    store = f"sqlite:///{tmp_path}/srv.db"
    assert CliRunner().invoke(app, ["keys", "create", "ops", "--scopes", "read", "--store", store]).exit_code == 0
    again = CliRunner().invoke(app, ["keys", "create", "ops", "--scopes", "read", "--store", store])
    assert again.exit_code == 1 and f"(threadloom keys revoke ops --store {store})" in again.stderr
