"""The physical floors the durable figures are measured beside (issue 18): the same work, bare.

Each floor does what the figure's store does to the database, with nothing of threadloom around it:

- *store step*: a bare `sqlite3` transaction per append, writing the same rows (the same events,
  encoded to the same bytes) into a file of the same tables and indexes (made by `SQLiteStore`
  itself), with the same `journal_mode` and `synchronous`. On `FULL` the runtime's step is one synced
  commit and one without the sync (its `tool_response`, `sync=False`), so the floor's is too:
  `PRAGMA synchronous=NORMAL` around its second commit, as the store does;
- *resume*: a bare fetch of the thread's rows on a fresh connection (its metadata, then its events
  in order) and a `json.loads` of each row's data: what any load must do at least (the collector
  left as the process has it, as a library must);
- *workers*: bare psycopg loops replaying the statements a `Worker` sends for a thread (recorded
  from a real one, bench_durable's `trace_worker`), with their parameters: a claim of one thread
  (the same statement), then that thread's appends in turn, and again; as many loops at once per
  process as the worker runs threads (`concurrency`), each on a connection of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sqlite3
import sys
import time
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from threadloom import Thread

Row = tuple[str, int, str, str, str, str, int]
"""An event row of threadloom's `events` table: thread, seq, event id, type, data, at, schema version."""


def event_rows(thread: Thread, after: int) -> list[Row]:
    """The rows of the events after the first `after`, encoded as threadloom writes them (compact JSON, ISO times)."""
    return [
        (
            thread.id,
            seq,
            e.id,
            e.type,
            json.dumps(e.data, ensure_ascii=False, separators=(",", ":")),
            e.at.isoformat(),
            1,
        )
        for seq, e in enumerate(thread.events[after:], start=after + 1)
    ]


# -- store step ----------------------------------------------------------------------------------------


def sqlite_connect(path: str, synchronous: Literal["FULL", "NORMAL"]) -> sqlite3.Connection:
    """A bare connection set up as `SQLiteStore` sets up its own: WAL, the same `synchronous`, foreign keys on."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class SQLiteStep:
    """One append as a bare transaction: the thread's summary row updated, its new event rows inserted."""

    def __init__(self, thread: Thread, after: int) -> None:
        """Everything the transaction writes, made beforehand (making it is threadloom's cost, not the floor's)."""
        self.rows = [v for r in event_rows(thread, after) for v in r]
        self.insert = "INSERT INTO events VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * (len(thread) - after))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.summary = (thread.status, len(thread), None, now, thread.id)

    def commit(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE threads SET status = ?, events = ?, wake_at = ?, updated_at = ? WHERE thread_id = ?", self.summary
        )
        db.execute(self.insert, self.rows)
        db.execute("COMMIT")


def sqlite_step(db: sqlite3.Connection, synchronous: str, synced: SQLiteStep, unsynced: SQLiteStep) -> None:
    """The floor of a tool step: the call's commit, then the result's without a disk sync, as the runtime's.

    On a connection with `synchronous=FULL` (`synchronous`, as it was opened) the second commit runs
    with `synchronous=NORMAL`, switched back right after (as `SQLiteStore` does for `sync=False`);
    on `NORMAL` neither commit syncs.
    """
    synced.commit(db)
    if synchronous == "FULL":
        db.execute("PRAGMA synchronous=NORMAL")
    unsynced.commit(db)
    if synchronous == "FULL":
        db.execute("PRAGMA synchronous=FULL")


def new_rows(path: str, after: int) -> list[tuple[Any, ...]]:
    """Every event row past `after` in a threadloom SQLite file (to check that two files hold the same bytes)."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT * FROM events WHERE seq > ? ORDER BY thread_id, seq", (after,)).fetchall()
    finally:
        db.close()


# -- resume --------------------------------------------------------------------------------------------


def sqlite_fetch_decode(path: str, thread_id: str) -> float:
    """Seconds to fetch a thread's rows on a fresh connection and decode each row's JSON."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        start = time.perf_counter()
        db.execute("BEGIN")
        (metadata,) = db.execute("SELECT metadata FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
        rows = db.execute(
            "SELECT event_id, type, data, at, schema_version FROM events WHERE thread_id = ? ORDER BY seq", (thread_id,)
        ).fetchall()
        decoded = (json.loads(metadata), [json.loads(r[2]) for r in rows])
        db.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        db.close()
    assert len(decoded[1]) == len(rows)
    return elapsed


def postgres_fetch_decode(url: str, thread_id: str) -> float:
    """Seconds to fetch a thread's rows on a fresh psycopg connection and decode each row's JSON."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        head = conn.execute("SELECT metadata FROM threadloom_threads WHERE thread_id = %s", (thread_id,)).fetchone()
        assert head is not None
        rows = conn.execute(
            "SELECT event_id, type, data, at::text, schema_version FROM threadloom_events"
            " WHERE thread_id = %s ORDER BY seq",
            (thread_id,),
        ).fetchall()
        decoded = (json.loads(head[0]), [json.loads(r[2]) for r in rows])
        elapsed = time.perf_counter() - start
    assert len(decoded[1]) == len(rows)
    return elapsed


# -- workers -------------------------------------------------------------------------------------------

STEP = "-- model step"  # in a trace: the worker asked the model here


@contextmanager
def traced_statements(trace: list[Any]) -> Generator[None]:
    """Every statement psycopg's async cursors send meanwhile, as (query, parameters), appended to `trace`."""
    import psycopg

    cursor: Any = psycopg.AsyncCursor  # patched on the class, for the trace only
    original = cursor.execute

    async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        trace.append((str(query), None if params is None else list(params)))
        return await original(self, query, params, **kwargs)

    cursor.execute = execute
    try:
        yield
    finally:
        cursor.execute = original


def per_thread(trace: Sequence[Any], thread_id: str, owner: str) -> dict[str, Any]:
    """A traced worker run of one thread as a claim and the statements for that thread.

    The claim is the last `FOR UPDATE SKIP LOCKED` statement before the first one naming the thread;
    the thread's statements are those after it whose parameters name it, with the model-step marks.
    What else the worker sent (its look for due sleepers, its LISTEN) is not per thread, and left out.
    """
    first = next(i for i, s in enumerate(trace) if s != STEP and s[1] and thread_id in s[1])
    at = max(i for i, s in enumerate(trace[:first]) if s != STEP and "SKIP LOCKED" in s[0])
    statements = [s for s in trace[at + 1 :] if s == STEP or (s[1] and thread_id in s[1])]
    return {"thread_id": thread_id, "owner": owner, "claim": trace[at], "statements": statements}


def replay(url: str, plan: dict[str, Any], concurrency: int) -> None:
    """One floor process: `concurrency` loops, each on a connection of its own, each claiming a thread
    and sending its statements, until nothing is left to claim.

    Says "ready" once connected, starts at "go", and once told to stop prints a (wall, CPU) mark per
    model step as JSON, as a worker process of bench_durable.py does.
    """
    import psycopg

    owner = f"floor:{os.getpid()}"
    marks: list[tuple[float, float]] = []

    def bind(params: list[Any] | None, thread_id: str) -> list[Any] | None:
        swap = {plan["thread_id"]: thread_id, plan["owner"]: owner}
        return None if params is None else [swap.get(p, p) if isinstance(p, str) else p for p in params]

    async def loop(conn: psycopg.AsyncConnection[Any]) -> None:
        claim, statements = plan["claim"], plan["statements"]
        while True:
            cursor = await conn.execute(claim[0], bind(claim[1], ""))
            claimed = [r[0] for r in await cursor.fetchall() if r[0] is not None]
            if not claimed:
                return
            for thread_id in claimed:
                for statement in statements:
                    if statement == STEP:
                        marks.append((time.perf_counter(), time.process_time()))
                    else:
                        await conn.execute(statement[0], bind(statement[1], thread_id))  # its results are in

    async def main() -> None:
        conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(concurrency)]
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # go
        await asyncio.gather(*map(loop, conns))
        for conn in conns:
            await conn.close()

    asyncio.run(main())
    sys.stdin.readline()  # stop
    print(json.dumps({"marks": marks}))


if __name__ == "__main__":  # `python bench/floors.py replay URL PLAN CONCURRENCY` (PLAN: a pickled `per_thread`)
    replay(sys.argv[2], pickle.loads(Path(sys.argv[3]).read_bytes()), int(sys.argv[4]))
