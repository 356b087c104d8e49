import asyncio
import contextlib
import signal
import sys
import threading
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Literal

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


Traced = list[tuple[str, str, str]]
"""Statements as the store's connections ran them: (connection, its `synchronous` then, statement)."""


def _trace(store: SQLiteStore) -> Traced:
    """The statements the store's two connections run from now on (see `Traced`).

    The store's thread's connection starts as the store was opened, the one for commits made at
    once as NORMAL; each follows its own `PRAGMA synchronous=` statements.
    """
    traced: Traced = []
    modes = {"thread": store._synchronous, "now": "NORMAL"}  # pyright: ignore[reportPrivateUsage]

    def on(connection: str) -> Callable[[str], None]:
        def record(statement: str) -> None:
            if statement.startswith("PRAGMA synchronous="):
                modes[connection] = statement.removeprefix("PRAGMA synchronous=")
            traced.append((connection, modes[connection], statement))

        return record

    store._db.set_trace_callback(on("thread"))  # pyright: ignore[reportPrivateUsage]
    store._now.set_trace_callback(on("now"))  # pyright: ignore[reportPrivateUsage]
    return traced


def _commit_modes(traced: Traced) -> list[str]:
    """The `synchronous` setting in force at each COMMIT of the traced statements."""
    return [mode for mode, _, _ in _commits(traced)]


def _commits(traced: Traced) -> list[tuple[str, str, str]]:
    """Each COMMIT's `synchronous` setting, the first statement of its transaction after BEGIN, and its connection."""
    first: dict[str, str] = {}
    begun: dict[str, bool] = {}
    commits: list[tuple[str, str, str]] = []
    for connection, mode, statement in traced:
        if begun.get(connection):
            first[connection], begun[connection] = statement, False
        if statement.startswith("BEGIN"):
            begun[connection] = True
        elif statement == "COMMIT":
            commits.append((mode, first[connection], connection))
    return commits


def _placed(traced: Traced) -> list[tuple[str, str]]:
    """Each COMMIT's `synchronous` setting and the connection it ran on (`thread`, or `now` for at once)."""
    return [(mode, connection) for mode, _, connection in _commits(traced)]


@contextlib.asynccontextmanager
async def _beside_another_task() -> AsyncGenerator[None]:
    """Another task on the event loop meanwhile: a synced commit must not hold it up."""
    other = asyncio.create_task(asyncio.Event().wait())
    try:
        yield
    finally:
        other.cancel()


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
    traced = _trace(store)
    first, second, third = _steps(thread, 3)
    async with _beside_another_task():
        await store.append(first, after=1)
        await store.append(second, after=2, sync=False)
        await store.release(thread.id, "nobody")  # any other write syncs, as before
        await store.append(third, after=3)
    assert _placed(traced) == [("FULL", "thread"), ("NORMAL", "now"), ("FULL", "thread")]
    assert not any(s.startswith("PRAGMA") for _, _, s in traced)  # each connection is set up once
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # pyright: ignore[reportPrivateUsage]
    assert await store.load(thread.id) == third
    await store.aclose()


async def test_appends_queued_together_each_keep_their_own_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    threads = [Thread.start("user_input", {"text": str(i)}) for i in range(6)]
    for thread in threads:
        await store.append(thread, after=0)
    traced = _trace(store)
    # Submitted at once, before any runs: each must still commit in its own mode.
    syncs = {t.id: i % 3 != 1 for i, t in enumerate(threads)}
    await asyncio.gather(*(store.append(_steps(t, 1)[0], after=1, sync=syncs[t.id]) for t in threads))
    modes = {next(i for i in syncs if i in first): mode for mode, first, _ in _commits(traced)}
    assert modes == {i: "FULL" if s else "NORMAL" for i, s in syncs.items()}
    await store.aclose()


async def test_a_lone_task_commits_a_synced_append_at_once_and_still_syncs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    traced = _trace(store)
    first, second, third = _steps(thread, 3)
    await store.append(first, after=1)  # this test is the event loop's only task: nothing to hold up
    await store.append(second, after=2, sync=False)
    async with _beside_another_task():
        await store.append(third, after=3)
    assert _placed(traced) == [("FULL", "now"), ("NORMAL", "now"), ("FULL", "thread")]
    assert store._now.execute("PRAGMA synchronous").fetchone() == (1,)  # pyright: ignore[reportPrivateUsage] - NORMAL again
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # pyright: ignore[reportPrivateUsage]
    assert await store.load(thread.id) == third
    await store.aclose()


async def test_a_normal_store_has_nothing_to_skip(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db", synchronous="NORMAL")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    traced = _trace(store)
    first, second = _steps(thread, 2)
    await store.append(first, after=1, sync=False)
    await store.append(second, after=2)
    assert _commit_modes(traced) == ["NORMAL", "NORMAL"]
    assert not any(s.startswith("PRAGMA") for _, _, s in traced)
    await store.aclose()


_HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


@pytest.mark.parametrize(
    ("synchronous", "sync", "mode"),
    [("FULL", False, "NORMAL"), ("NORMAL", True, "NORMAL"), ("NORMAL", False, "NORMAL")],
)
async def test_an_append_that_would_commit_at_once_waits_for_another_process_off_the_event_loop(
    tmp_path: Path, synchronous: Literal["FULL", "NORMAL"], sync: bool, mode: str
) -> None:
    store = SQLiteStore(tmp_path / "t.db", synchronous=synchronous)
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_THE_WRITE_LOCK, str(tmp_path / "t.db"), stdin=PIPE, stdout=PIPE
    )
    assert other.stdout is not None and other.stdin is not None
    assert await other.stdout.readline() == b"locked\n"
    traced = _trace(store)
    (step,) = _steps(thread, 1)
    append = asyncio.create_task(store.append(step, after=1, sync=sync))
    await asyncio.sleep(0.1)  # the event loop runs on while the append waits for the lock
    assert not append.done()
    other.stdin.write(b"\n")
    await append  # its turn came: no SQLITE_BUSY
    assert _commit_modes(traced) == [mode]  # on the store's thread, still without the sync
    assert await other.wait() == 0
    assert await store.load(thread.id) == step
    db, now = store._db, store._now  # pyright: ignore[reportPrivateUsage]
    assert db.execute("PRAGMA busy_timeout").fetchone() == (30_000,)  # both as the store opened them
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    assert db.execute("PRAGMA synchronous").fetchone() == ({"FULL": 2, "NORMAL": 1}[synchronous],)
    assert now.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert now.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    await store.aclose()


_HOLD_THE_WRITE_LOCK_UNTIL_FLAGGED = """
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
db.execute("COMMIT")
"""


async def test_a_lone_tasks_synced_append_waits_for_another_process_on_the_stores_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    flag = tmp_path / "release"
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_THE_WRITE_LOCK_UNTIL_FLAGGED, str(tmp_path / "t.db"), str(flag), stdout=PIPE
    )
    assert other.stdout is not None
    assert await other.stdout.readline() == b"locked\n"
    traced = _trace(store)

    def release_once_tried_at_once() -> None:  # a thread, not a task: the test stays its loop's only task
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(c == "now" and s.startswith("BEGIN") for c, _, s in traced):
            time.sleep(0.005)
        flag.touch()

    threading.Thread(target=release_once_tried_at_once, daemon=True).start()
    (step,) = _steps(thread, 1)
    await store.append(step, after=1)  # tried at once, found the lock taken: waited its turn, no SQLITE_BUSY
    assert ("now", "FULL", "BEGIN IMMEDIATE") in traced  # it was tried at once first
    assert _placed(traced) == [("FULL", "thread")]
    assert store._now.execute("PRAGMA synchronous").fetchone() == (1,)  # pyright: ignore[reportPrivateUsage] - NORMAL again
    assert await other.wait() == 0
    assert await store.load(thread.id) == step
    await store.aclose()


async def test_the_wal_stays_bounded_under_appends_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteStore(path, synchronous="NORMAL")
    threads = [Thread.start("user_input", {"text": str(i)}) for i in range(10)]
    for thread in threads:
        await store.append(thread, after=0)
    # ~5 pages a commit: 12,000 pages (47 MiB) of WAL, had nothing checkpointed it.
    for _ in range(120):
        longer = [t.append(Event("note", {"n": len(t)})) for t in threads]
        await asyncio.gather(*(store.append(n, after=len(t)) for n, t in zip(longer, threads, strict=True)))
        threads = [t.append(Event("note", {"n": len(t)})) for t in longer]
        for t, n in zip(threads, longer, strict=True):
            await store.append(t, after=len(n), sync=False)
    wal_pages = await asyncio.to_thread(lambda: Path(f"{path}-wal").stat().st_size // 4096)
    assert wal_pages < 2 * 1000  # about `wal_autocheckpoint` pages, as SQLite's own checkpoint keeps it
    assert [await store.load(t.id) for t in threads] == threads
    await store.aclose()


_APPEND_UNTIL_KILLED = """
import asyncio, sys
from threadloom import Event, Thread
from threadloom.store import SQLiteStore

async def main() -> None:
    store = SQLiteStore(sys.argv[1], synchronous="NORMAL")
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    while True:
        longer = thread.append(Event("note", {"n": len(thread)}))
        await store.append(longer, after=len(thread), sync=len(thread) % 2 == 0)
        thread = longer
        print(thread.id, len(thread), flush=True)

asyncio.run(main())
"""


async def test_an_append_acknowledged_at_once_survives_a_crash_beside_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteStore(path, synchronous="NORMAL")
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", _APPEND_UNTIL_KILLED, str(path), stdout=PIPE)
    assert child.stdout is not None
    thread = Thread.start("user_input", {"text": "mine"})
    await store.append(thread, after=0)
    acknowledged = ("", 0)
    while acknowledged[1] < 300:  # both write the file meanwhile, each waiting its turn
        for _ in range(5):
            longer = thread.append(Event("note", {"n": len(thread)}))
            await store.append(longer, after=len(thread), sync=False)
            thread = longer
        thread_id, count = (await child.stdout.readline()).split()
        acknowledged = (thread_id.decode(), int(count))
    child.send_signal(signal.SIGKILL)
    await child.wait()
    await store.aclose()
    reopened = SQLiteStore(path, synchronous="NORMAL")
    assert await reopened.load(thread.id) == thread
    assert len(await reopened.load(acknowledged[0])) >= acknowledged[1]
    await reopened.aclose()
