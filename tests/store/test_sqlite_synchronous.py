import asyncio
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
    mode, modes = start, list[str]()
    for statement in statements:
        if statement.startswith("PRAGMA synchronous="):
            mode = statement.removeprefix("PRAGMA synchronous=")
        elif statement == "COMMIT":
            modes.append(mode)
    return modes


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
    assert statements[release - 1] == "PRAGMA synchronous=FULL"
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
    syncs = [i % 3 != 1 for i in range(6)]
    await asyncio.gather(*(store.append(_steps(t, 1)[0], after=1, sync=s) for t, s in zip(threads, syncs, strict=True)))
    assert _commit_modes(statements, "FULL") == ["FULL" if s else "NORMAL" for s in syncs]
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
