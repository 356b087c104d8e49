"""The durable runtime (issue 5): a step on SQLite and PostgreSQL as threads grow, resume, workers.

- *store step*: what a step costs the store: the two appends the loop makes for one tool call
  (`tool_call` with its `tool_started`, synced; then `tool_response`, which the run goes on from:
  `sync=False`), each its own transaction, to a thread already holding 10 / 1,000 / 10,000 events;
  time (median) and bytes the database grew per step;
- *agent step*: the same thread driven by `Runtime.run_thread` with the ScriptedModel: render,
  model call, parse, tool, the two appends; the median interval between two tool runs;
- *resume*: a fresh `Runtime` loads a 10,000-event thread and takes one step (the model finishes);
- *workers*: 1 / 2 / 4 worker processes (`Worker.run`, 8 threads at once each) on PostgreSQL drain
  2,000 threads of 5 model steps each; steps per second in the steady state (the middle 80% of all
  steps) and the workers' CPU per step (`python bench/bench_durable.py workers` runs only these).

PostgreSQL runs in a throwaway schema of `THREADLOOM_BENCH_POSTGRES_URL`
(default postgresql://postgres@127.0.0.1:5432/test), dropped afterwards; without a server the
PostgreSQL rows say so.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pickle
import secrets
import sqlite3
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

import floors
from workload import outputs

from threadloom import Agent, Event, RunLimits, Runtime, Thread, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel
from threadloom.store import SQLiteStore, ThreadStore, open_store

PG_URL = os.environ.get("THREADLOOM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LENGTHS = (10, 1_000, 10_000)
STORE_STEPS = 100
AGENT_STEPS = 30
HERE = Path(__file__).parent

# The circuit breaker (60 model calls and tool runs a thread a minute) would pause the bench's long,
# fast threads: the bench measures the store and worker paths, so it lifts the bound.
UNBOUNDED = RunLimits(model_calls_per_minute=10**9, tool_runs_per_minute=10**9)


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
    """The database file's size once its WAL is folded in.

    The fold waits while it is busy: the store's own thread may be checkpointing right then, and a
    WAL measured before its truncation counted its pages as growth.
    """
    db = sqlite3.connect(path)
    for _ in range(100):
        if db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:  # 1: busy, try again
            break
        time.sleep(0.01)
    db.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


# -- the store's share of a step -------------------------------------------------------------------


async def store_step(
    store: ThreadStore,
    size: Callable[[], Any],
    length: int,
    floor: tuple[str, Literal["FULL", "NORMAL"]] | None = None,
) -> dict[str, float]:
    """Median time of one step's two appends to a thread of `length` events, and bytes per step.

    With `floor` (a file and its `synchronous`), the same step is also written by a bare `sqlite3`
    transaction into a second file (`floors.sqlite_step`), pair by pair with the store's (which goes
    first alternates), so that the host's drift is in both; `ratio` is the median of the pairs'
    ratios, and the two files are checked to hold the same rows. The floor's rows are encoded
    beforehand (`ratio`); `encoded_ratio` counts their encoding too (`json.dumps` of each event's
    data, its time's `isoformat`, the thread row's time formatted), the work any store of these
    events does before its transaction.
    """
    thread = history(length)
    await store.append(thread, after=0)
    db: sqlite3.Connection | None = None
    floor_before = 0
    if floor is not None:
        made = SQLiteStore(floor[0], synchronous=floor[1])  # the same tables and indexes, holding the same thread
        await made.append(thread, after=0)
        await made.aclose()
        db = floors.sqlite_connect(*floor)
        floor_before = sqlite_bytes(floor[0])
    before = await size()
    times: list[float] = []
    floor_times: list[float] = []
    encode_times: list[float] = []
    for i in range(STORE_STEPS):
        started, result = steps_of(thread, i)
        if db is not None and floor is not None and i % 2:  # the pairs alternate which goes first
            bare_step(db, floor[1], thread, started, result, encode_times, floor_times)
        start = time.perf_counter()
        await store.append(started, after=len(thread))
        await store.append(result, after=len(started), sync=False)  # as the loop saves a result it goes on from
        times.append(time.perf_counter() - start)
        if db is not None and floor is not None and not i % 2:
            bare_step(db, floor[1], thread, started, result, encode_times, floor_times)
        thread = result
    grown = await size() - before
    measured = {"step_ms": statistics.median(times) * 1e3, "bytes_per_step": grown / STORE_STEPS}
    if db is not None and floor is not None:
        db.close()
        assert isinstance(store, SQLiteStore)
        assert floors.new_rows(store.path, length) == floors.new_rows(floor[0], length), "the floor wrote other rows"
        measured |= {
            "floor_ms": statistics.median(floor_times) * 1e3,
            "floor_bytes_per_step": (sqlite_bytes(floor[0]) - floor_before) / STORE_STEPS,
            "ratio": statistics.median(a / b for a, b in zip(times, floor_times, strict=True)),
            "encoded_floor_ms": statistics.median(map(sum, zip(encode_times, floor_times, strict=True))) * 1e3,
            "encoded_ratio": statistics.median(
                a / (e + b) for a, e, b in zip(times, encode_times, floor_times, strict=True)
            ),
        }
    return measured


def bare_step(
    db: sqlite3.Connection,
    synchronous: str,
    thread: Thread,
    started: Thread,
    result: Thread,
    encodes: list[float],
    commits: list[float],
) -> None:
    """The floor's step: its rows encoded (seconds to `encodes`), then the two bare transactions (to `commits`)."""
    start = time.perf_counter()
    synced, unsynced = floors.SQLiteStep(started, len(thread)), floors.SQLiteStep(result, len(started))
    encoded = time.perf_counter()
    floors.sqlite_step(db, synchronous, synced, unsynced)
    commits.append(time.perf_counter() - encoded)
    encodes.append(encoded - start)


# -- a whole step, and resume -------------------------------------------------------------------------


def timed_agent(n: int, stamps: list[float]) -> Agent:
    """The workload's agent (named `loop`) whose tool notes when it runs."""

    @tool(name="noop")
    async def noop(i: int) -> dict[str, int]:
        """Return what it was given."""
        stamps.append(time.perf_counter())
        return {"ok": i}

    return Agent(name="loop", model=ScriptedModel(outputs(n), keep_requests=False), tools=[noop], max_steps=n + 2)


async def agent_step(store: ThreadStore, length: int) -> float:
    """Median ms between two tool runs while the runtime drives a thread that starts `length` events long."""
    thread = history(length)
    await store.append(thread, after=0)
    stamps: list[float] = []
    runtime = Runtime(store=store, agents=[timed_agent(AGENT_STEPS, stamps)], limits=UNBOUNDED)
    await runtime.run_thread(thread.id)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)) * 1e3


async def resume(
    store: ThreadStore, reopen: Callable[[], Any], length: int, floor: Callable[[str], float]
) -> dict[str, float]:
    """A fresh runtime loads a `length`-event thread and takes one step (the model finishes); best of 5.

    Each round also times the floor, right after the resume: `floor(thread_id)`, a bare fetch and
    JSON decode of the same thread's rows (`floors`); then the resume with a compacted context, the
    load alone and the render alone. `ratio` and `load_ratio` are the medians of the rounds' resume ÷
    floor and load ÷ floor. Each timed part starts from a collected heap (`gc.collect()` before it,
    in this harness only), so that a full collection the one before it left due falls in neither.
    """
    totals: list[float] = []
    bare: list[float] = []
    compacts: list[float] = []
    loads: list[float] = []
    renders: list[float] = []
    for _ in range(5):
        for compact, times in ((False, totals), (True, compacts)):
            thread = history(length)
            await store.append(thread, after=0)
            fresh: ThreadStore = await reopen()
            hook = last_events if compact else None
            agent = Agent(
                name="loop",
                model=ScriptedModel(outputs(0), keep_requests=False),
                tools=[],
                max_steps=2,
                before_model=hook,
            )
            runtime = Runtime(store=fresh, agents=[agent], limits=UNBOUNDED)
            gc.collect()
            start = time.perf_counter()
            done = await runtime.run_thread(thread.id)
            times.append(time.perf_counter() - start)
            assert done.status == "done"
            await fresh.aclose()
            if not compact:
                gc.collect()
                bare.append(floor(thread.id))
        fresh = await reopen()
        agent = Agent(name="loop", model=ScriptedModel([]), tools=[])
        gc.collect()
        start = time.perf_counter()
        loaded = await fresh.load(thread.id)
        loads.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        agent.render(loaded)
        renders.append(time.perf_counter() - start)
        await fresh.aclose()
    return {
        "floor_ms": min(bare) * 1e3,
        "ratio": statistics.median(a / b for a, b in zip(totals, bare, strict=True)),
        "load_ratio": statistics.median(a / b for a, b in zip(loads, bare, strict=True)),
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

# ~10,000 model steps: seconds of steady state, so that start-up and the tail weigh little.
WORKER_THREADS = int(os.environ.get("BENCH_WORKER_THREADS", "2000"))
WORKER_CALLS = 4  # tool calls per thread: 5 model steps each
WORKER_CONCURRENCY = 8  # threads each worker process runs at once
STEADY = (0.1, 0.9)  # the steady state: from the 10% to the 90% of all model steps taken


async def workers(url: str, processes: int, plan: Path | None = None) -> dict[str, float]:
    """What `processes` worker processes (`Worker.run`, as a service runs) do while draining WORKER_THREADS threads.

    Every model step is stamped (wall clock and the process's CPU time) where the scripted model
    answers. `steps_per_s` is the steady state: the steps taken between the 10% and the 90% stamps of
    all steps, over that time, so neither start-up (imports, connections, the first claims) nor the
    tail (the last threads, when fewer than all workers have work) weighs in. `drain_steps_per_s` is
    all steps over the time from "go" to the last step. `worker_cpu_ms_per_step` is the workers' CPU
    (all processes) within the steady window per step; PostgreSQL's own CPU is not in it.

    With `plan` (a pickled `floors.per_thread`), the processes are the floor's instead: bare psycopg
    loops replaying a worker's statements (`floors.replay`, WORKER_CONCURRENCY loops a process),
    stamped where the worker asked its model.
    """
    store = await open_store(url)
    runtime = Runtime(store=store, limits=UNBOUNDED)  # launches by name: the workers know the agent
    for i in range(WORKER_THREADS):
        await runtime.launch("loop", Event("user_input", {"text": f"thread {i}"}))
    command = (
        [str(HERE / "bench_durable.py"), "worker", url]
        if plan is None
        else [str(HERE / "floors.py"), "replay", url, str(plan), str(WORKER_CONCURRENCY)]
    )
    ends, start = await asyncio.to_thread(drive_workers, url, processes, command)
    done = await store.list(status="done", limit=10_000)
    await runtime.aclose()
    assert len(done) == WORKER_THREADS, f"{len(done)} of {WORKER_THREADS} threads finished"
    marks = sorted((wall, i) for i, e in enumerate(ends) for wall, _ in e["marks"])
    steps = len(marks)
    assert steps == WORKER_THREADS * (WORKER_CALLS + 1), f"{steps} model steps"
    low, high = marks[int(steps * STEADY[0])][0], marks[int(steps * STEADY[1])][0]
    window = [[cpu for wall, cpu in e["marks"] if low <= wall <= high] for e in ends]
    in_window = sum(len(w) for w in window)
    cpu = sum(w[-1] - w[0] for w in window if w)
    return {
        "steps": steps,
        "steps_per_s": in_window / (high - low),
        "drain_steps_per_s": steps / (marks[-1][0] - start),
        "worker_cpu_ms_per_step": cpu / in_window * 1e3,
    }


def drive_workers(url: str, processes: int, command: list[str]) -> tuple[list[dict[str, Any]], float]:
    """Start the processes (`command`, run by this Python), let them go at once, stop them once every thread is done.

    Returns:
        Each process's report and the moment ("go") they started (`time.perf_counter`, which is the
        same monotonic clock in every process).
    """
    import psycopg

    procs = [
        subprocess.Popen([sys.executable, *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for proc in procs:  # each says "ready" once imported and connected
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    with psycopg.connect(url, autocommit=True) as conn:  # a look every 0.2 s costs the workers nothing
        while True:
            row = conn.execute("SELECT count(*) FROM threadloom_threads WHERE status <> 'done'").fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.2)
    ends: list[dict[str, Any]] = [json.loads(proc.communicate("stop\n")[0]) for proc in procs]
    return ends, start


def scripted_worker_agent(on_step: Callable[[], object]) -> Agent:
    """The workers' agent: WORKER_CALLS calls of `noop`, then a finish; `on_step` runs at every model step."""

    def decide(messages: Sequence[Message]) -> str:
        on_step()
        done = messages[-1].content.count("<noop_result>")
        return outputs(WORKER_CALLS)[min(done, WORKER_CALLS)]

    @tool
    async def noop(i: int) -> dict[str, int]:
        """Return what it was given."""
        return {"ok": i}

    model = ScriptedModel([decide] * 1_000_000, keep_requests=False)
    return Agent(name="loop", model=model, tools=[noop], max_steps=WORKER_CALLS + 2)


async def trace_worker(url: str) -> dict[str, Any]:
    """The statements a `Worker` sends to run one thread (`floors.per_thread`), recorded from a real one."""
    from threadloom import Worker

    trace: list[Any] = []
    runtime = Runtime(store=url, agents=[scripted_worker_agent(lambda: trace.append(floors.STEP))], limits=UNBOUNDED)
    thread_id = await runtime.launch("loop", Event("user_input", {"text": "thread 0"}))
    worker = Worker(
        runtime, concurrency=1, owner="bench-trace"
    )  # its claim asks for one thread, as the floor's loops do
    with floors.traced_statements(trace):
        assert await worker.run_until_idle() == 1
    await runtime.aclose()
    return floors.per_thread(trace, thread_id, worker.owner)


def worker_process(url: str) -> None:
    """One worker process: `Worker.run` until told to stop; reports a (wall, CPU) mark per model step."""
    from threadloom import Worker

    marks: list[tuple[float, float]] = []

    async def main() -> None:
        agent = scripted_worker_agent(lambda: marks.append((time.perf_counter(), time.process_time())))
        runtime = Runtime(store=url, agents=[agent], limits=UNBOUNDED)
        await runtime.store()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # go
        stop = asyncio.Event()
        told = asyncio.create_task(asyncio.to_thread(sys.stdin.readline))  # stop
        told.add_done_callback(lambda _: stop.set())
        await Worker(runtime, concurrency=WORKER_CONCURRENCY).run(stop)
        await runtime.aclose()
        print(json.dumps({"marks": marks}))

    asyncio.run(main())


async def measure_workers(counts: Sequence[int] = (1, 2, 4)) -> dict[str, Any]:
    """The workers section alone: `python bench/bench_durable.py workers [processes ...]`.

    Each row's workers and then its floor (`workers(..., plan)`) drain their own fresh schema, one
    right after the other, so that both see the host as it is then; `ratio` is workers ÷ floor.
    """
    async with postgres_schema() as url:
        plan = await trace_worker(url)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.pickle"
        path.write_bytes(pickle.dumps(plan))
        for processes, commit in [*((n, "on") for n in counts), (max(counts), "off")]:
            options = "" if commit == "on" else quote(" -csynchronous_commit=off")
            async with postgres_schema() as url:
                measured = await workers(url + options, processes)
            async with postgres_schema() as url:
                floor = await workers(url + options, processes, plan=path)
            ratio = measured["steps_per_s"] / floor["steps_per_s"]
            results[f"{processes}:synchronous_commit={commit}"] = {**measured, "floor": floor, "ratio": ratio}
    statements = [s for s in plan["statements"] if s != floors.STEP]
    results["plan"] = {"claim": 1, "statements": len(statements)}
    return results


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
                    store,
                    lambda p=path: asyncio.to_thread(sqlite_bytes, p),
                    length,
                    (f"{tmp}/floor{sync}{length}.db", sync),
                )
                results["agent"].setdefault(label, {})[length] = await agent_step(store, length)
                await store.aclose()
            path = f"{tmp}/resume{sync}.db"
            store = SQLiteStore(path, synchronous=sync)
            results["resume"][label] = await resume(
                store,
                lambda p=path, s=sync: asyncio.to_thread(SQLiteStore, p, synchronous=s),
                10_000,
                lambda thread_id, p=path: floors.sqlite_fetch_decode(p, thread_id),
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
            results["resume"]["PostgreSQL"] = await resume(
                store, lambda: open_store(url), 10_000, lambda thread_id: floors.postgres_fetch_decode(url, thread_id)
            )
            await store.aclose()
        results["workers"] = await measure_workers()
        results["worker_plan"] = results["workers"].pop("plan")
    except Exception as exc:  # no server: the rows say so instead of failing the whole run
        results["postgres_error"] = f"{type(exc).__name__}: {exc}"
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_process(sys.argv[2])
    elif sys.argv[1:2] == ["workers"]:
        print(json.dumps(asyncio.run(measure_workers([int(n) for n in sys.argv[2:]] or (1, 2, 4))), indent=1))
    else:
        print(json.dumps(asyncio.run(measure()), indent=1))
