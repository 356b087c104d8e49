"""The server's tables (keys, settings, outbox): one contract over memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from threadloom import Event, Runtime
from threadloom.exceptions import StoreError, UserError
from threadloom.server import (
    Delivery,
    KeyRing,
    StoredKey,
    Tables,
    link_secret,
    open_tables,
    tables_url,
    webhook_secret,
)
from threadloom.server._keys import digest, new_secret
from threadloom.store import open_store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/threads.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def tables(url: str) -> AsyncIterator[Tables]:
    opened = await open_tables(url)
    yield opened
    await opened.aclose()


def key(name: str, secret: str = "tlk_s") -> StoredKey:
    return StoredKey(name, frozenset({"read", "approve"}), digest(secret), datetime(2026, 5, 1, 12, tzinfo=UTC))


def delivery(n: int, url: str = "http://127.0.0.1:9/hook", at: datetime | None = None) -> Delivery:
    return Delivery(f"msg_{n}", url, f'{{"n": {n}}}', at or datetime(2026, 5, 1, 12, n, tzinfo=UTC))


async def test_keys_are_stored_by_name_with_their_digest_only(tables: Tables) -> None:
    secret = new_secret()
    await tables.add_key(key("ops", secret))
    await tables.add_key(key("ci"))
    assert [k.name for k in await tables.keys()] == ["ci", "ops"]
    assert (await tables.keys())[1] == key("ops", secret)
    with pytest.raises(UserError, match="a key named 'ops' exists already"):
        await tables.add_key(key("ops", "tlk_other"))
    ring = KeyRing(stored=tables.keys)
    found = await ring.find(secret)
    assert found is not None and found.name == "ops" and found.scopes == {"read", "approve"}
    assert await tables.remove_key("ops") and not await tables.remove_key("ops")
    assert [k.name for k in await tables.keys()] == ["ci"]


async def test_settings_get_put_and_the_first_add_wins(tables: Tables) -> None:
    assert await tables.get_setting("watermark") is None
    await tables.put_setting("watermark", "a")
    await tables.put_setting("watermark", "b")
    assert await tables.get_setting("watermark") == "b"
    assert await tables.add_setting("secret", "first") == "first"
    assert await tables.add_setting("secret", "second") == "first"


async def test_the_link_and_webhook_secrets_are_made_once(tables: Tables) -> None:
    made = await link_secret(tables)
    assert len(made) >= 32 and await link_secret(tables) == made
    hook = await webhook_secret(tables)
    assert hook.startswith("whsec_") and await webhook_secret(tables) == hook


async def test_a_queued_id_is_queued_once(tables: Tables) -> None:
    assert await tables.queue([delivery(1), delivery(2)]) == 2
    assert await tables.queue([delivery(2), delivery(3)]) == 1
    assert await tables.queue([]) == 0
    assert await tables.known(["msg_1", "msg_3", "msg_9"]) == {"msg_1", "msg_3"}
    assert await tables.known([]) == set()
    assert [d.delivery_id for d in await tables.deliveries()] == ["msg_3", "msg_2", "msg_1"]
    assert {d.state for d in await tables.deliveries()} == {"queued"}


async def test_a_claim_leases_the_oldest_due_to_one_owner(tables: Tables) -> None:
    other = "http://127.0.0.1:9/other"
    await tables.queue([delivery(3), delivery(1), delivery(2), delivery(4, url=other)])
    urls = ["http://127.0.0.1:9/hook"]
    first = await tables.claim("a", urls=urls, lease_seconds=60, limit=2)
    assert [d.delivery_id for d in first] == ["msg_1", "msg_2"]
    second = await tables.claim("b", urls=urls, lease_seconds=60, limit=10)
    assert [d.delivery_id for d in second] == ["msg_3"]  # msg_4 is for a URL not asked for
    assert await tables.claim("c", urls=urls, lease_seconds=60, limit=10) == []
    assert await tables.claim("c", urls=[], lease_seconds=60, limit=10) == []


async def test_an_expired_lease_is_claimed_again(tables: Tables) -> None:
    await tables.queue([delivery(1)])
    urls = ["http://127.0.0.1:9/hook"]
    assert len(await tables.claim("a", urls=urls, lease_seconds=0, limit=5)) == 1
    again = await tables.claim("b", urls=urls, lease_seconds=60, limit=5)
    assert [d.delivery_id for d in again] == ["msg_1"]
    await tables.failed("msg_1", "a", error="late", retry_at=datetime.now(UTC))  # a's lease is gone
    (queued,) = await tables.deliveries()
    assert queued.attempts == 0 and queued.last_error is None


async def test_failures_retry_later_or_give_up_and_a_delivery_is_final(tables: Tables) -> None:
    await tables.queue([delivery(1), delivery(2)])
    urls = ["http://127.0.0.1:9/hook"]
    await tables.claim("a", urls=urls, lease_seconds=60, limit=5)
    later = datetime.now(UTC) + timedelta(hours=1)
    await tables.failed("msg_1", "a", error="HTTP 503", retry_at=later)
    await tables.failed("msg_2", "a", error="HTTP 410", retry_at=None)
    assert await tables.claim("b", urls=urls, lease_seconds=60, limit=5) == []  # not due, given up
    by_id = {d.delivery_id: d for d in await tables.deliveries()}
    assert by_id["msg_1"].state == "queued" and by_id["msg_1"].attempts == 1
    assert by_id["msg_1"].last_error == "HTTP 503"
    assert by_id["msg_1"].next_attempt_at is not None
    assert abs(by_id["msg_1"].next_attempt_at - later) < timedelta(milliseconds=1)
    assert by_id["msg_2"].state == "given_up" and by_id["msg_2"].last_error == "HTTP 410"

    await tables.queue([delivery(3)])
    (claimed,) = await tables.claim("c", urls=urls, lease_seconds=60, limit=5)
    await tables.delivered(claimed.delivery_id)
    await tables.delivered(claimed.delivery_id)  # twice: still one delivery, one attempt
    done = {d.delivery_id: d for d in await tables.deliveries()}["msg_3"]
    assert done.state == "delivered" and done.attempts == 1 and done.delivered_at is not None
    await tables.failed("msg_3", "c", error="late", retry_at=None)  # a delivery stays delivered
    assert {d.delivery_id: d for d in await tables.deliveries()}["msg_3"].state == "delivered"


async def test_prune_drops_only_old_finished_deliveries(tables: Tables) -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)
    await tables.queue([delivery(1, at=old), delivery(2, at=old), delivery(3)])
    urls = ["http://127.0.0.1:9/hook"]
    for claimed in await tables.claim("a", urls=urls, lease_seconds=60, limit=1):
        await tables.delivered(claimed.delivery_id)
    assert await tables.prune(datetime(2026, 2, 1, tzinfo=UTC)) == 1  # msg_1; msg_2 is still queued
    assert [d.delivery_id for d in await tables.deliveries()] == ["msg_3", "msg_2"]


async def test_the_tables_survive_a_reopen(store_url: str) -> None:
    url = store_url
    first = await open_tables(url)
    await first.add_key(key("ops"))
    await first.queue([delivery(1)])
    secret = await link_secret(first)
    await first.aclose()
    second = await open_tables(url)
    try:
        assert [k.name for k in await second.keys()] == ["ops"]
        assert [d.delivery_id for d in await second.deliveries()] == ["msg_1"]
        assert await link_secret(second) == secret
    finally:
        await second.aclose()


async def test_two_openers_at_once_share_one_schema(store_url: str) -> None:
    both = await asyncio.gather(open_tables(store_url), open_tables(store_url))
    try:
        await both[0].add_key(key("ops"))
        assert [k.name for k in await both[1].keys()] == ["ops"]
    finally:
        for tables in both:
            await tables.aclose()


async def test_the_tables_sit_beside_the_store_and_leave_its_schema_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/threads.db"
    tables = await open_tables(url)
    await tables.add_key(key("ops"))
    async with Runtime(store=url) as runtime:
        thread_id = await runtime.launch("support", Event("support_ticket", {"text": "hi"}))
        assert tables_url(await runtime.store()) == url
        assert (await runtime.get(thread_id)).status == "ready"
    await tables.aclose()
    with closing(sqlite3.connect(tmp_path / "threads.db")) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (version,) = db.execute("PRAGMA user_version").fetchone()
    assert {"threads", "events", "threadloom_api_keys", "threadloom_outbox", "threadloom_settings"} <= names
    assert version >= 3  # the store's own migrations ran as they would without the tables


async def test_tables_url_of_each_store(postgres_url: str) -> None:
    memory = await open_store("memory://")
    assert tables_url(memory) == "memory://"
    postgres = await open_store(postgres_url)
    try:
        assert tables_url(postgres) == postgres_url
    finally:
        await postgres.aclose()


async def test_unknown_urls_are_refused() -> None:
    with pytest.raises(UserError, match="unknown store URL"):
        await open_tables("mysql://x")
    with pytest.raises(UserError, match="needs a file name"):
        await open_tables("sqlite:///")


def test_a_file_of_another_program_gets_no_tables_and_is_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"holds other tables \(`users`\) and none of threadloom's"):
        asyncio.run(open_tables(f"sqlite:///{path}"))
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]  # no -wal, no -shm
