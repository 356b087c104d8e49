import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import psycopg
import pytest

from threadloom import Event, StoreError, Thread, UserError
from threadloom.store import open_store
from threadloom.store._codec import encode_event, encode_metadata
from threadloom.store.base import masked, masked_url
from threadloom.store.postgres import MIGRATIONS, PostgresStore


async def test_migrations_apply_from_an_empty_schema_and_once(postgres_url: str) -> None:
    first = await PostgresStore.open(postgres_url)
    await first.aclose()
    second = await open_store(postgres_url)  # opening again applies nothing new
    thread = Thread.start("user_input", "hi")
    await second.append(thread, after=0)
    assert await second.load(thread.id) == thread
    await second.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM threadloom_schema")
        assert await cur.fetchall() == [(len(MIGRATIONS),)]


async def test_a_database_shared_with_another_program_gets_the_store_beside_its_tables(postgres_url: str) -> None:
    # Unlike SQLite's, the store's tables here are all `threadloom_`: a database shared with an
    # application is a usual deployment, and its tables are left alone.
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE users (name TEXT)")
        await conn.execute("INSERT INTO users VALUES ('ada')")
    store = await PostgresStore.open(postgres_url)
    await store.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        names = {name for (name,) in await cur.fetchall()}
        assert await (await conn.execute("SELECT name FROM users")).fetchall() == [("ada",)]
    assert "users" in names and "threadloom_threads" in names
    assert all(name == "users" or name.startswith("threadloom_") for name in names)


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    await store.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE threadloom_schema SET version = 99")
    with pytest.raises(StoreError, match="has threadloom schema 99"):
        await PostgresStore.open(postgres_url)


async def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open PostgreSQL store"):
        await PostgresStore.open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", connect_timeout=1)


async def test_a_store_that_cannot_connect_fails_fast_with_the_cause_in_one_line(postgres_url: str) -> None:
    # Before: ~16 s, then "pool initialization incomplete", the cause buried above.
    missing = postgres_url.replace("/test?", f"/no_such_db_{secrets.token_hex(3)}?")
    started = asyncio.get_running_loop().time()
    with pytest.raises(StoreError, match="does not exist") as refused:
        await PostgresStore.open(missing)
    assert asyncio.get_running_loop().time() - started < 5
    assert "\n" not in str(refused.value) and "pool initialization" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:hunter2@127.0.0.1:1/db?connect_timeout=1",  # nothing listens
        "postgresql://app:hunter2@127.0.0.1:5432/db?bad option=1",  # malformed
        "postgresql://app:hunter2@127.0.0.1:notaport/db",
    ],
)
async def test_a_store_url_never_prints_its_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(StoreError) as refused:
        await PostgresStore.open(url, connect_timeout=1)
    assert "hunter2" not in str(refused.value) and "***" in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert "hunter2" not in caplog.text


async def test_a_mistyped_scheme_never_prints_the_password() -> None:
    with pytest.raises(UserError) as refused:
        await open_store("postgress://app:hunter2@db/app")
    assert "hunter2" not in str(refused.value) and "postgress://app:***@db/app" in str(refused.value)


async def test_an_older_schema_migrates_forward_and_keeps_its_threads(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as older:
        older.setattr("threadloom.store.postgres.MIGRATIONS", MIGRATIONS[:1])  # a database of the first release
        await (await PostgresStore.open(postgres_url)).aclose()
    # A thread, a launch key and a later delivery's key as the first release wrote them.
    thread = Thread.start("user_input", {"text": "kept"}, agent="a")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO threadloom_threads (thread_id, agent, status, events, metadata, created_at, updated_at)"
            " VALUES (%s, 'a', 'ready', 1, %s, %s, %s)",
            (thread.id, encode_metadata(thread), created, created),
        )
        row = encode_event(thread.events[0])
        await conn.execute(
            "INSERT INTO threadloom_events VALUES (%s, 1, %s, %s, %s, %s, %s)", (thread.id, *row[:3], row[3], row[4])
        )
        await conn.execute(
            "INSERT INTO threadloom_idempotency_keys VALUES ('launch-key', %s, %s)", (thread.id, created)
        )
        later = created + timedelta(seconds=1)
        await conn.execute("INSERT INTO threadloom_idempotency_keys VALUES ('later-key', %s, %s)", (thread.id, later))
    store = await PostgresStore.open(postgres_url)
    assert await store.load(thread.id) == thread
    assert await store.find_key("launch-key", scope="launch:a") == thread.id
    assert await store.find_key("later-key", scope=f"thread:{thread.id}", request="any") == thread.id
    await store.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM threadloom_schema")
        assert await cur.fetchall() == [(len(MIGRATIONS),)]
        cur = await conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'threadloom_threads'")
        assert ("threadloom_threads_wake",) in await cur.fetchall()


async def test_concurrent_opens_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(postgres_url) for _ in range(4)))
    for store in stores:
        await store.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM threadloom_schema")
        assert await cur.fetchall() == [(len(MIGRATIONS),)]


async def test_a_lost_listen_connection_is_reopened(postgres_url: str) -> None:
    name = f"tl_{secrets.token_hex(4)}"
    store = await PostgresStore.open(f"{postgres_url}&application_name={name}")
    try:
        await store.wait_for_work(0)  # listening
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            )
        # The loss wakes whoever waits (they look for work, by polling if need be)...
        await asyncio.wait_for(store.wait_for_work(3600), timeout=60)
        # ...and a later wait listens again. Two rounds: the first may be ended by the reconnection
        # itself; by the second the new connection is listening, so only NOTIFY can end it.
        other = await PostgresStore.open(postgres_url)
        for text in ("work", "more work"):
            waiter = asyncio.create_task(store.wait_for_work(3600))
            await other.append(Thread.start("user_input", text), after=0)
            await asyncio.wait_for(waiter, timeout=60)
        await other.aclose()
    finally:
        await store.aclose()


async def test_a_row_of_another_schema_version_is_refused_on_load(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    thread = Thread.start("user_input", {"text": "hi"}).append(Event("note", {"n": 1}))
    await store.append(thread, after=0)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE threadloom_events SET schema_version = 2 WHERE seq = 2")
    with pytest.raises(ValueError, match=f"event {thread.events[1].id!r} has schema version 2"):
        await store.load(thread.id)
    await store.aclose()


@pytest.mark.parametrize("settings", ["-cTimeZone=Asia/Kolkata -cDateStyle=SQL,DMY", "-cTimeZone=America/New_York"])
async def test_times_load_back_exactly_in_utc_whatever_the_session_settings(postgres_url: str, settings: str) -> None:
    writer = await PostgresStore.open(postgres_url)
    start = datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=UTC)  # New York's clocks change at 07:00 UTC
    events = [Event("note", {"n": n}, at=start + timedelta(microseconds=n)) for n in range(3)]
    events.append(Event("note", None, at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3)))))
    thread = Thread(events)
    await writer.append(thread, after=0)
    await writer.aclose()
    reader = await PostgresStore.open(f"{postgres_url}{quote(' ' + settings)}")
    loaded = await reader.load(thread.id)
    assert loaded == thread and [e.at for e in loaded.events] == [e.at for e in thread.events]
    assert all(e.at.tzinfo == UTC for e in loaded.events)
    await reader.aclose()


async def test_a_load_reads_in_key_order_and_leaves_the_session_as_it_was(postgres_url: str) -> None:
    session = quote(" -cTimeZone=Asia/Kolkata -cDateStyle=ISO,DMY")
    store = await PostgresStore.open(f"{postgres_url}{session}", max_connections=1)
    thread = Thread.start("user_input", {"text": "hi"}).extend(Event("note", {"n": n}) for n in range(50))
    await store.append(thread, after=0)
    loaded = await store.load(thread.id)
    assert [e.id for e in loaded.events] == [e.id for e in thread.events]
    async with store._pool.connection() as conn:  # pyright: ignore[reportPrivateUsage] - the one pooled connection
        settings = "current_setting('enable_sort'), current_setting('DateStyle'), current_setting('TimeZone')"
        cur = await conn.execute(f"SELECT {settings}, now()")
        row = await cur.fetchone()
        assert row is not None and row[:3] == ("on", "ISO, DMY", "Asia/Kolkata")
        assert str(row[3].tzinfo) == "Asia/Kolkata"  # the driver reads times in the session's zone again
    await store.aclose()


async def test_claim_threads_reads_short_and_long_threads_as_load_does(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    short = Thread.start("user_input", {"text": "short"}, agent="a")
    long = Thread.start("user_input", {"text": "long"}).extend(Event("note", {"i": i}) for i in range(300))
    for thread in (short, long):
        await store.append(thread, after=0)
    claimed = await store.claim_threads("w1", lease_seconds=30, limit=5)
    assert sorted(t.to_json() for t in claimed) == sorted(t.to_json() for t in (short, long))
    # Its times are the times `load` reads, whatever the session's time zone.
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE threadloom_threads SET lease_expires = NULL")
    other = await PostgresStore.open(postgres_url + quote(" -cTimeZone=Asia/Kolkata -cDateStyle=SQL,DMY"))
    again = await other.claim_threads("w2", lease_seconds=30, limit=5)
    assert sorted(t.to_json() for t in again) == sorted(t.to_json() for t in (short, long))
    await other.aclose()
    await store.aclose()


@pytest.mark.parametrize("settings", ["-cTimeZone=Asia/Kolkata -cDateStyle=SQL,DMY", "-cDateStyle=German"])
async def test_list_reads_times_in_utc_whatever_the_session_settings(postgres_url: str, settings: str) -> None:
    # psycopg's own timestamptz loader refuses these DateStyles: `list` must not depend on it.
    store = await PostgresStore.open(f"{postgres_url}{quote(' ' + settings)}")
    wake = datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=UTC)
    thread = Thread.start("user_input", "hi", agent="a").append(Event("wait_until", {"until": wake.isoformat()}))
    await store.append(thread, after=0)
    [summary] = await store.list(agent="a")
    assert summary.status == "sleeping" and summary.wake_at == wake
    assert summary.wake_at is not None and summary.wake_at.tzinfo == UTC
    assert summary.updated_at.tzinfo == UTC and abs(summary.updated_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert [s.thread_id for s in await store.list(wake_before=wake, updated_after=wake - timedelta(days=1))] == [
        thread.id
    ]
    await store.aclose()


async def test_a_stopping_append_ends_the_lease_and_the_release_clears_its_name(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    assert [t.id for t in await store.claim_threads("w1", lease_seconds=30, limit=1)] == [thread.id]
    stopped = thread.append(Event("done_for_now", {"message": "m"}))
    await store.append(stopped, after=1, owner="w1")
    assert await store.renew(thread.id, "w1", lease_seconds=30)  # still w1's, and left ended
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT lease_owner, lease_expires FROM threadloom_threads")
        assert await cur.fetchall() == [("w1", None)]  # the name kept for fencing, no expiry
        await store.release(thread.id, "w1")
        cur = await conn.execute("SELECT lease_owner, lease_expires FROM threadloom_threads")
        assert await cur.fetchall() == [(None, None)]
    again = stopped.append(Event("user_input", {"text": "more"}))
    await store.append(again, after=2)  # a person speaks: claimable at once, by anyone
    assert [t.id for t in await store.claim_threads("w2", lease_seconds=30, limit=1)] == [thread.id]
    assert not await store.renew(thread.id, "w1", lease_seconds=30)
    assert await store.renew(thread.id, "w2", lease_seconds=30)
    await store.aclose()


async def test_a_connection_dropped_between_calls_is_replaced_transparently(postgres_url: str) -> None:
    name = f"tl_dropped_{secrets.token_hex(4)}"  # only this store's connections are dropped
    store = await PostgresStore.open(f"{postgres_url}&application_name={name}")
    thread = Thread.start("user_input", {"text": "kept"})
    await store.append(thread, after=0)
    assert await store.load(thread.id) == thread
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        # The store's pool loses its connections (a restart, an idle timeout).
        cur = await admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        assert (await cur.fetchone()) != (0,)
    await asyncio.sleep(1.2)  # idle
    assert await store.load(thread.id) == thread  # before: StoreError "server closed the connection"
    await store.append(thread.append(Event("note", {"n": 1})), after=1)
    await store.aclose()


@pytest.mark.parametrize("password", ["pa/ss", "pa#ss", "pa?ss", "s3cr@t", "Zx9/k+Q="])
def test_a_password_left_unencoded_is_never_printed(password: str) -> None:
    # A generated password often holds / or +; left unencoded in the URL, the masking's password
    # stopped at it (or at the first @) and printed all or the end of it.
    url = f"postgresql://postgres:{password}@127.0.0.1:5999/test"
    assert masked_url(url) == "postgresql://postgres:***@127.0.0.1:5999/test"
    pieces = [piece for piece in re.split(r"[/#?@]", password) if len(piece) >= 4]
    for shown in (masked_url(url), masked(f"cannot open {url}: failed to resolve host '{password}@127'", url)):
        assert password not in shown and not any(piece in shown for piece in pieces), shown


def test_masking_a_password_leaves_the_words_it_is_part_of() -> None:
    # The everyday dev URL: its password is also the start of the scheme, which was shown `***ql://`.
    # The user name is the password here, so it is masked too.
    url = "postgresql://postgres:postgres@127.0.0.1:5999/test"
    text = masked(f"cannot open PostgreSQL store {url}: connection refused", url)
    assert text == "cannot open PostgreSQL store postgresql://***:***@127.0.0.1:5999/test: connection refused"


async def test_a_password_left_unencoded_is_named_as_the_likely_cause() -> None:
    with pytest.raises(StoreError, match="percent-encode") as refused:
        await PostgresStore.open("postgresql://postgres:pa/ss@127.0.0.1:1/test", connect_timeout=1)
    assert "pa/ss" not in str(refused.value)
