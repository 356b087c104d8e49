import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from threadloom import Event, StoreError, Thread
from threadloom.store import SQLiteStore, open_store
from threadloom.store import sqlite as sqlite_store
from threadloom.store._codec import encode_event, encode_metadata
from threadloom.store.sqlite import MIGRATIONS


async def test_migrations_apply_from_an_empty_file_and_once(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteStore(path)
    await store.aclose()
    again = SQLiteStore(path)  # opening again applies nothing new
    await again.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"threads", "events", "idempotency_keys"} <= tables


async def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # pyright: ignore[reportPrivateUsage]
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # pyright: ignore[reportPrivateUsage] - FULL
    await store.aclose()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="has schema 99"):
        SQLiteStore(path)


async def test_threads_survive_reopening_from_another_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    first = await open_store(url)
    thread = Thread.start("user_input", {"text": "hi"})
    await first.append(thread, after=0)
    await first.aclose()
    second = await open_store(url)
    assert await second.load(thread.id) == thread
    await second.aclose()


async def test_each_event_is_one_row_keyed_by_thread_and_seq(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = Thread.start("user_input", "a")
    await store.append(thread, after=0)
    longer = thread.append(Thread.start("note", "b").events[0])
    await store.append(longer, after=1)
    rows = store._db.execute("SELECT thread_id, seq, type, schema_version FROM events").fetchall()  # pyright: ignore[reportPrivateUsage]
    assert rows == [(thread.id, 1, "user_input", 1), (thread.id, 2, "note", 1)]
    await store.aclose()


async def test_open_store_urls(tmp_path: Path) -> None:
    from threadloom import UserError

    with pytest.raises(UserError, match="unknown store URL"):
        await open_store("mysql://x")
    with pytest.raises(UserError, match="needs a file name"):
        await open_store("sqlite:///")
    assert type(await open_store("memory://")).__name__ == "MemoryStore"


async def test_an_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        SQLiteStore(tmp_path / "missing-dir" / "t.db")


async def test_an_older_schema_migrates_forward_and_keeps_its_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.db"
    with monkeypatch.context() as older:
        older.setattr("threadloom.store.sqlite.MIGRATIONS", MIGRATIONS[:1])  # a database of the first release
        await SQLiteStore(path).aclose()
    # A thread, a launch key and a later delivery's key as the first release wrote them.
    thread = Thread.start("user_input", {"text": "kept"}, agent="a")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO threads (thread_id, agent, status, events, metadata, created_at, updated_at)"
            " VALUES (?, 'a', 'ready', 1, ?, 'T1', 'T1')",
            (thread.id, encode_metadata(thread)),
        )
        db.execute("INSERT INTO events VALUES (?, 1, ?, ?, ?, ?, ?)", (thread.id, *encode_event(thread.events[0])))
        db.execute("INSERT INTO idempotency_keys VALUES ('launch-key', ?, 'T1')", (thread.id,))
        db.execute("INSERT INTO idempotency_keys VALUES ('later-key', ?, 'T2')", (thread.id,))
    store = SQLiteStore(path)
    assert await store.load(thread.id) == thread
    assert await store.find_key("launch-key", scope="launch:a") == thread.id
    assert await store.find_key("later-key", scope=f"thread:{thread.id}", request="any") == thread.id
    await store.append(thread.append(Thread.start("note", "after").events[0]), after=1)
    await store.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "threads_wake" in indexes


def _three_events() -> Thread:
    thread = Thread.start("user_input", {"text": "hi"}, agent="a")
    return thread.append(Event("note", {"n": 1})).append(Event("note", {"n": 2}))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("schema_version", 2, "has schema version 2"),
        ("at", "2026-01-01T00:00:00", "has a time without a timezone"),
        ("data", "{", "Expecting property name"),
    ],
)
async def test_a_row_this_threadloom_cannot_read_is_refused_on_load(
    tmp_path: Path, column: str, value: object, message: str
) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = _three_events()
    await store.append(thread, after=0)
    store._db.execute(f"UPDATE events SET {column} = ? WHERE seq = 2", (value,))  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(ValueError, match=message):
        await store.load(thread.id)
    await store.aclose()


async def test_a_long_thread_loads_back_exactly_with_its_state(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = _three_events()
    for i in range(300):
        call = Event("tool_call", {"intent": "noop", "arguments": {"i": i}, "policy": "auto"})
        thread = thread.extend([call, Event("tool_response", {"call_id": call.id, "intent": "noop", "result": i})])
    thread = thread.append(Event("tool_call", {"intent": "noop", "arguments": {"i": -1}, "policy": "auto"}))
    await store.append(thread, after=0)
    loaded = await SQLiteStore(tmp_path / "t.db").load(thread.id)
    assert loaded == thread and loaded.state == thread.state and loaded.to_json() == thread.to_json()
    assert loaded.state.runnable is not None and dict(loaded.state.runnable.arguments) == {"i": -1}
    await store.aclose()


def _app_database(path: Path, version: int) -> bytes:
    """Another program's SQLite file (a table, and a `user_version` of its own unless 0); its bytes."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            f"CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada'); PRAGMA user_version = {version};"
        )
    return path.read_bytes()


@pytest.mark.parametrize("version", [0, 7])
def test_a_file_of_another_program_is_refused_and_left_unchanged(tmp_path: Path, version: int) -> None:
    path = tmp_path / "app.db"
    before = _app_database(path, version)
    with pytest.raises(StoreError, match=r"holds other tables \(`users`\) and none of threadloom's"):
        SQLiteStore(path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]  # no -wal, no -shm


@pytest.mark.parametrize("made", ["nothing", "an empty file", "the server's tables only"])
async def test_a_new_or_empty_file_or_one_of_threadloom_tables_becomes_a_store(tmp_path: Path, made: str) -> None:
    path = tmp_path / "t.db"
    if made == "an empty file":
        path.write_bytes(b"")
    elif made == "the server's tables only":  # as `open_tables` makes them before any store
        with closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE threadloom_server_schema (version INTEGER NOT NULL)")
    store = SQLiteStore(path)
    thread = Thread.start("user_input", "hi")
    await store.append(thread, after=0)
    assert await store.load(thread.id) == thread
    await store.aclose()


@pytest.mark.parametrize("failing", ["the schema check", "the second connection"])
async def test_an_open_that_fails_closes_the_connection_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "t.db"
    if failing == "the schema check":
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA user_version = 99")  # a newer threadloom's: refused between the two connections
    opened: list[sqlite3.Connection] = []
    connect = sqlite_store._connect  # pyright: ignore[reportPrivateUsage]

    def recording(where: str, synchronous: str, busy_ms: int, *, create: bool = True) -> sqlite3.Connection:
        if failing == "the second connection" and opened:
            raise sqlite3.OperationalError("unable to open database file")
        opened.append(connect(where, synchronous, busy_ms, create=create))
        return opened[-1]

    monkeypatch.setattr(sqlite_store, "_connect", recording)
    with pytest.raises(StoreError):
        SQLiteStore(path)
    assert len(opened) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        opened[0].execute("SELECT 1")
