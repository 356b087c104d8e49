import asyncio
import sqlite3
from pathlib import Path

import pytest

from threadloom import Event, Thread, UserError
from threadloom.store import SQLiteStore


async def test_normal_sync_is_a_choice_and_keeps_the_contract(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db", synchronous="NORMAL")
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # pyright: ignore[reportPrivateUsage] - NORMAL
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    assert await store.load(thread.id) == thread
    await store.aclose()


def test_other_sync_modes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="synchronous must be"):
        SQLiteStore(tmp_path / "t.db", synchronous="OFF")  # pyright: ignore[reportArgumentType]


def _commit_modes(statements: list[str], start: str) -> list[str]:
    """The `synchronous` setting in force at each COMMIT of a connection's traced statements."""
    return [mode for mode, _ in _commits(statements, start)]


def _commits(statements: list[str], start: str) -> list[tuple[str, str]]:
    """Each COMMIT's `synchronous` setting, with the first statement of its transaction after BEGIN."""
    mode, first, commits = start, "", list[tuple[str, str]]()
    for previous, statement in zip(["", *statements], statements, strict=False):
        if statement.startswith("PRAGMA synchronous="):
            mode = statement.removeprefix("PRAGMA synchronous=")
        elif previous.startswith("BEGIN"):
            first = statement
        elif statement == "COMMIT":
            commits.append((mode, first))
    return commits


def _steps(thread: Thread, count: int) -> list[Thread]:
    """`count` versions of `thread`, each one event longer."""
    versions: list[Thread] = []
    for i in range(count):
        thread = thread.append(Event("note", {"i": i}))
        versions.append(thread)
    return versions


async def test_an_append_without_sync_is_the_one_commit_that_skips_the_disk(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # pyright: ignore[reportPrivateUsage]
    first, second, third = _steps(thread, 3)
    await store.append(first, after=1)
    await store.append(second, after=2, sync=False)
    await store.release(thread.id, "nobody")  # any other write syncs, as before
    await store.append(third, after=3)
    assert _commit_modes(statements, "FULL") == ["FULL", "NORMAL", "FULL"]
    release = next(i for i, s in enumerate(statements) if s.startswith("UPDATE threads SET lease_owner = NULL"))
    pragmas = [s for s in statements[:release] if s.startswith("PRAGMA synchronous=")]
    assert pragmas == ["PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"]  # back at once, for any write
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # pyright: ignore[reportPrivateUsage]
    assert await store.load(thread.id) == third
    await store.aclose()


async def test_appends_queued_together_each_keep_their_own_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    threads = [Thread.start("user_input", {"text": str(i)}) for i in range(6)]
    for thread in threads:
        await store.append(thread, after=0)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # pyright: ignore[reportPrivateUsage]
    # Submitted at once, before any runs: each must still commit in its own mode.
    syncs = {t.id: i % 3 != 1 for i, t in enumerate(threads)}
    await asyncio.gather(*(store.append(_steps(t, 1)[0], after=1, sync=syncs[t.id]) for t in threads))
    modes = {next(i for i in syncs if i in first): mode for mode, first in _commits(statements, "FULL")}
    assert modes == {i: "FULL" if s else "NORMAL" for i, s in syncs.items()}
    await store.aclose()


async def test_a_normal_store_has_nothing_to_skip(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db", synchronous="NORMAL")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # pyright: ignore[reportPrivateUsage]
    first, second = _steps(thread, 2)
    await store.append(first, after=1, sync=False)
    await store.append(second, after=2)
    assert _commit_modes(statements, "NORMAL") == ["NORMAL", "NORMAL"]
    assert not any(s.startswith("PRAGMA") for s in statements)
    await store.aclose()


async def test_an_append_without_sync_waits_for_another_writer_off_the_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    (step,) = _steps(thread, 1)
    append = asyncio.create_task(store.append(step, after=1, sync=False))
    await asyncio.sleep(0.05)  # the event loop runs on while the append waits for the lock
    assert not append.done()
    other.execute("COMMIT")
    await append
    assert await store.load(thread.id) == step
    db = store._db  # pyright: ignore[reportPrivateUsage]
    assert db.execute("PRAGMA busy_timeout").fetchone() == (30_000,)  # as the store opened it
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    other.close()
    await store.aclose()
