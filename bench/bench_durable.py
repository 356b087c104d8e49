"""The durable runtime (issue 5): a step on SQLite and PostgreSQL as threads grow, resume, workers.

- *store step*: what a step costs the store: the two appends the loop makes for one tool call
  (`tool_call` with its `tool_started`, synced; then `tool_response`, which the run goes on from:
  `sync=False`), each its own transaction, to a thread already holding 10 / 1,000 / 10,000 events;
  time (median) and bytes the database grew per step;
- *agent step*: the same thread driven by `Runtime.run_thread` with the ScriptedModel: render,
  model call, parse, tool, the two appends; the median interval between two tool runs;
- *resume*: a fresh `Runtime` loads a 10,000-event thread and takes one step (the model finishes);
- *workers*: 1 / 2 / 4 worker processes on PostgreSQL drain the same batch of threads.

PostgreSQL runs in a throwaway schema of `THREADLOOM_BENCH_POSTGRES_URL`
(default postgresql://postgres@127.0.0.1:5432/test), dropped afterwards; without a server the
PostgreSQL rows say so.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))

from workload import outputs

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel
from threadloom.store import SQLiteStore, ThreadStore, open_store

PG_URL = os.environ.get("THREADLOOM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LENGTHS = (10, 1_000, 10_000)
STORE_STEPS = 100
AGENT_STEPS = 30
HERE = Path(__file__).parent


def history(length: int) -> Thread:
    """A finished-looking thread of `length` events: the workload's calls and results."""
    thread = Thread.start("user_input", {"text": "call noop many times"}, agent="loop")
    i = 0
    while len(thread) + 4 <= length:
        thread = step_events(thread, i)
        i += 1
    while len(thread) < length - 1:
        thread = thread.append(Event("note", {"i": len(thread)}))
    # The person speaks again last: the step limit counts from there, and the thread is ready.
    return thread.append(Event("user_input", {"text": "go on"}))


def step_events(thread: Thread, i: int) -> Thread:
    """The three events one tool call adds, as the loop records them."""
    return steps_of(thread, i)[-1]


def steps_of(thread: Thread, i: int) -> tuple[Thread, Thread]:
    """The thread after each of the loop's two saves for one tool call: the call with its start, the result."""
    call = Event("tool_call", {"intent": "noop", "arguments": {"i": i}, "policy": "auto"})
    started = thread.extend(
        [call, Event("tool_started", {"call_id": call.id, "intent": "noop", "idempotency_key": call.id})]
    )
    return started, started.append(Event("tool_response", {"call_id": call.id, "intent": "noop", "result": {"ok": i}}))


# -- stores --------------------------------------------------------------------------------------


@asynccontextmanager
async def postgres_schema() -> AsyncGenerator[str, None]:
    """A URL whose connections use a fresh schema, dropped on exit."""
    import psycopg
    from psycopg import sql

    schema = f"bench_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def postgres_bytes(url: str) -> int:
    """What threadloom's tables and their indexes take on disk."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
        row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def sqlite_bytes(path: str) -> int:
    """The database file's size once its WAL is folded in."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


# -- the store's share of a step -------------------------------------------------------------------


async def store_step(store: ThreadStore, size: Callable[[], Any], length: int) -> dict[str, float]:
    """Median time of one step's two appends to a thread of `length` events, and bytes per step."""
    thread = history(length)
    await store.append(thread, after=0)
    before = await size()
    times: list[float] = []
    for i in range(STORE_STEPS):
        started, result = steps_of(thread, i)
        start = time.perf_counter()
        await store.append(started, after=len(thread))
        await store.append(result, after=len(started), sync=False)  # as the loop saves a result it goes on from
        times.append(time.perf_counter() - start)
        thread = result
    grown = await size() - before
    return {"step_ms": statistics.median(times) * 1e3, "bytes_per_step": grown / STORE_STEPS}


# -- a whole step, and resume -------------------------------------------------------------------------


def timed_agent(n: int, stamps: list[float]) -> Agent:
    """The workload's agent (named `loop`) whose tool notes when it runs."""

    @tool(name="noop")
    async def noop(i: int) -> dict[str, int]:
        """Return what it was given."""
        stamps.append(time.perf_counter())
        return {"ok": i}

    return Agent(name="loop", model=ScriptedModel(outputs(n)), tools=[noop], max_steps=n + 2)


async def agent_step(store: ThreadStore, length: int) -> float:
    """Median ms between two tool runs while the runtime drives a thread that starts `length` events long."""
    thread = history(length)
    await store.append(thread, after=0)
    stamps: list[float] = []
    runtime = Runtime(store=store, agents=[timed_agent(AGENT_STEPS, stamps)])
    await runtime.run_thread(thread.id)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)) * 1e3


async def resume(store: ThreadStore, reopen: Callable[[], Any], length: int) -> dict[str, float]:
    """A fresh runtime loads a `length`-event thread and takes one step (the model finishes); best of 5."""
    totals: list[float] = []
    compacts: list[float] = []
    loads: list[float] = []
    renders: list[float] = []
    for _ in range(5):
        for compact, times in ((False, totals), (True, compacts)):
            thread = history(length)
            await store.append(thread, after=0)
            fresh: ThreadStore = await reopen()
            hook = last_events if compact else None
            agent = Agent(name="loop", model=ScriptedModel(outputs(0)), tools=[], max_steps=2, before_model=hook)
            runtime = Runtime(store=fresh, agents=[agent])
            start = time.perf_counter()
            done = await runtime.run_thread(thread.id)
            times.append(time.perf_counter() - start)
            assert done.status == "done"
            await fresh.aclose()
        fresh = await reopen()
        agent = Agent(name="loop", model=ScriptedModel([]), tools=[])
        start = time.perf_counter()
        loaded = await fresh.load(thread.id)
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        agent.render(loaded)
        renders.append(time.perf_counter() - start)
        await fresh.aclose()
    return {
        "resume_ms": min(totals) * 1e3,
        "compact_ms": min(compacts) * 1e3,
        "load_ms": min(loads) * 1e3,
        "render_ms": min(renders) * 1e3,
    }


def last_events(thread: Thread) -> Thread:
    """A `before_model` hook: the model sees the first event and the last 99 (the log is unchanged)."""
    if len(thread) <= 100:
        return thread
    return Thread((thread.events[0], *thread.events[-99:]), thread_id=thread.id, metadata=thread.metadata)


# -- workers -----------------------------------------------------------------------------------------

WORKER_THREADS = 240
WORKER_CALLS = 4  # tool calls per thread: 5 model steps each


async def workers(url: str, processes: int) -> dict[str, float]:
    """Steps per second when `processes` worker processes drain WORKER_THREADS threads."""
    store = await open_store(url)
    agent = Agent(name="loop", model=ScriptedModel([]), tools=[], max_steps=WORKER_CALLS + 2)
    runtime = Runtime(store=store, agents=[agent])
    for i in range(WORKER_THREADS):
        await runtime.launch("loop", Event("user_input", {"text": f"thread {i}"}))
    ends, elapsed = await asyncio.to_thread(drive_workers, url, processes)
    steps = sum(e["steps"] for e in ends)
    done = await store.list(status="done", limit=10_000)
    await runtime.aclose()
    assert len(done) == WORKER_THREADS, f"{len(done)} of {WORKER_THREADS} threads finished"
    cpu_ms = sum(e["cpu"] for e in ends) / steps * 1e3
    return {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed, "worker_cpu_ms_per_step": cpu_ms}


def drive_workers(url: str, processes: int) -> tuple[list[dict[str, Any]], float]:
    """Start the worker processes, let them go at once, wait for all; their reports and the seconds taken."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "bench_durable.py"), "worker", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:  # each says "ready" once imported and connected
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    ends: list[dict[str, Any]] = [json.loads(proc.communicate()[0]) for proc in procs]
    return ends, max(e["end"] for e in ends) - start


def worker_process(url: str) -> None:
    """One worker process: runs threads until none is left, then reports its model steps."""
    from threadloom import Worker

    def decide(messages: Sequence[Message]) -> str:
        done = messages[-1].content.count("<noop_result>")
        return outputs(WORKER_CALLS)[min(done, WORKER_CALLS)]

    async def main() -> None:
        model = ScriptedModel([decide] * 100_000)

        @tool
        async def noop(i: int) -> dict[str, int]:
            """Return what it was given."""
            return {"ok": i}

        agent = Agent(name="loop", model=model, tools=[noop], max_steps=WORKER_CALLS + 2)
        runtime = Runtime(store=url, agents=[agent])
        await runtime.store()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu = time.process_time()
        await Worker(runtime, concurrency=8, poll_seconds=0.05).run_until_idle()
        end, cpu = time.perf_counter(), time.process_time() - cpu
        await runtime.aclose()
        print(json.dumps({"end": end, "steps": len(model.requests), "cpu": cpu}))

    asyncio.run(main())


# -- the section ------------------------------------------------------------------------------------


async def measure() -> dict[str, Any]:
    results: dict[str, Any] = {"store": {}, "agent": {}, "resume": {}, "workers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        modes: tuple[tuple[str, Literal["FULL", "NORMAL"]], ...] = (
            ("SQLite", "FULL"),
            ("SQLite (synchronous=NORMAL)", "NORMAL"),
        )
        for label, sync in modes:
            for length in LENGTHS:
                path = f"{tmp}/{sync}{length}.db"
                store = SQLiteStore(path, synchronous=sync)
                results["store"].setdefault(label, {})[length] = await store_step(
                    store, lambda p=path: asyncio.to_thread(sqlite_bytes, p), length
                )
                results["agent"].setdefault(label, {})[length] = await agent_step(store, length)
                await store.aclose()
            path = f"{tmp}/resume{sync}.db"
            store = SQLiteStore(path, synchronous=sync)
            results["resume"][label] = await resume(
                store, lambda p=path, s=sync: asyncio.to_thread(SQLiteStore, p, synchronous=s), 10_000
            )
            await store.aclose()
    try:
        async with postgres_schema() as url:
            for length in LENGTHS:
                store = await open_store(url)
                results["store"].setdefault("PostgreSQL", {})[length] = await store_step(
                    store, lambda: postgres_bytes(url), length
                )
                results["agent"].setdefault("PostgreSQL", {})[length] = await agent_step(store, length)
                await store.aclose()
            store = await open_store(url)
            results["resume"]["PostgreSQL"] = await resume(store, lambda: open_store(url), 10_000)
            await store.aclose()
        for processes, commit in ((1, "on"), (2, "on"), (4, "on"), (4, "off")):
            async with postgres_schema() as url:
                options = "" if commit == "on" else quote(" -csynchronous_commit=off")
                key = f"{processes}:synchronous_commit={commit}"
                results["workers"][key] = await workers(url + options, processes)
    except Exception as exc:  # no server: the rows say so instead of failing the whole run
        results["postgres_error"] = f"{type(exc).__name__}: {exc}"
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_process(sys.argv[2])
    else:
        print(json.dumps(asyncio.run(measure()), indent=1))
