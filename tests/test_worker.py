"""Workers: leases keep each thread on one worker; many processes share one store, each effect once."""

import asyncio
import importlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import cast

import pytest

from threadloom import Agent, Event, Message, Runtime, Thread, Worker, tool
from threadloom._saving import patiently
from threadloom.intents import idempotency_key
from threadloom.models import ScriptedModel
from threadloom.store import ThreadStore
from workers.started import wait_started

WORKLOAD = Path(__file__).parent / "workers" / "deploy_workload.py"
DONE = '{"intent": "done_for_now", "message": "ok"}'


async def test_run_until_idle_runs_every_thread_once(store: ThreadStore) -> None:
    calls: list[str] = []

    @tool
    def work(n: int) -> int:
        """Work."""
        calls.append(str(n))
        return n

    def decide(messages: Sequence[Message]) -> str:
        return DONE if "<work_result>" in messages[-1].content else '{"intent": "work", "n": 1}'

    outputs = [decide] * 40
    runtime = Runtime(store=store, agents=[Agent(name="w", model=ScriptedModel(outputs), tools=[work])])
    ids = [await runtime.launch("w", Event("user_input", {"i": i})) for i in range(10)]
    worker = Worker(runtime, concurrency=3)
    assert await worker.run_until_idle() == 10
    assert len(calls) == 10
    assert [(await runtime.get(i)).status for i in ids] == ["done"] * 10
    assert await worker.run_until_idle() == 0


async def test_run_stops_when_asked_and_releases_its_leases(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[Agent(name="a", model=ScriptedModel([DONE] * 5))])
    ids = [await runtime.launch("a", Event("user_input", {"i": i})) for i in range(5)]
    stop = asyncio.Event()
    worker = Worker(runtime, concurrency=2, poll_seconds=0.01)
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        if [(await runtime.get(i)).status for i in ids] == ["done"] * 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert [(await runtime.get(i)).status for i in ids] == ["done"] * 5


async def test_a_thread_whose_agent_is_unknown_does_not_stop_the_worker(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[Agent(name="a", model=ScriptedModel([DONE]))])
    await runtime.launch("a", Event("user_input", "x"))
    stranger = Runtime(store=store, agents=[Agent(name="b", model=ScriptedModel([]))])
    await stranger.launch("b", Event("user_input", "y"))
    assert await Worker(runtime).run_until_idle() == 1  # a claim takes only the agents the worker knows
    assert [s.status for s in await runtime.list(agent="a")] == ["done"]
    assert [s.status for s in await runtime.list(agent="b")] == ["ready"]  # left for a worker that knows b


async def test_threads_a_worker_cannot_run_do_not_starve_the_rest(store: ThreadStore) -> None:
    # Fails on the old code: the oldest `concurrency` ready threads (of an agent the worker does
    # not know, or in backoff) were claimed and released every poll, and newer threads never ran.
    runtime = Runtime(store=store, agents=[Agent(name="a", model=ScriptedModel([DONE] * 3))])
    stranger = Runtime(store=store, agents=[Agent(name="typo", model=ScriptedModel([]))])
    for i in range(4):
        await stranger.launch("typo", Event("user_input", {"i": i}))
    waiting = await runtime.launch("a", Event("user_input", "backoff"))
    later = datetime.now(UTC) + timedelta(hours=1)
    await runtime.send_event(
        waiting, Event("run_error", {"error_type": "X", "message": "m", "attempt": 1, "retry_at": later.isoformat()})
    )
    newer = await runtime.launch("a", Event("user_input", "newest"))
    stop = asyncio.Event()
    worker = Worker(runtime, concurrency=2, poll_seconds=0.05)
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if (await runtime.get(newer)).status == "done":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert (await runtime.get(newer)).status == "done"
    assert (await runtime.get(waiting)).status == "ready"  # not before its retry time
    assert [s.status for s in await runtime.list(agent="typo")] == ["ready"] * 4


def _launch_all(url: str, count: int) -> list[str]:
    sys.path.insert(0, str(WORKLOAD.parent))
    workload = importlib.import_module("deploy_workload")  # the worker processes' own agent
    runtime = Runtime(store=url, agents=[cast(Agent, workload.agent())])

    async def main() -> list[str]:
        ids = [await runtime.launch("recorder", Event("user_input", {"i": i})) for i in range(count)]
        await runtime.aclose()
        return ids

    return asyncio.run(main())


def _wait_all_done(url: str, ids: list[str], timeout: float, settled: bool = False) -> dict[str, str]:
    async def statuses() -> dict[str, str]:
        runtime = Runtime(store=url)
        found = {i: (await runtime.get(i)).status for i in ids}
        await runtime.aclose()
        return found

    deadline = time.monotonic() + timeout
    found = asyncio.run(statuses())
    ends = {"done", "waiting_human"} if settled else {"done"}
    while time.monotonic() < deadline and any(s not in ends for s in found.values()):
        time.sleep(0.1)
        found = asyncio.run(statuses())
    return found


def _run_processes(url: str, effects: Path, workers: int, threads: int) -> None:
    ids = _launch_all(url, threads)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKLOAD), url, str(effects)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            wait_started(proc)
        found = _wait_all_done(url, ids, timeout=60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        errors = [proc.communicate(timeout=30)[1].decode() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), errors
    assert set(found.values()) == {"done"}, found
    lines = effects.read_text().splitlines()
    assert len(lines) == threads and len(set(lines)) == threads  # each effect exactly once


# On PostgreSQL: tests/test_concurrency.py (4 processes, 500 threads).
def test_several_worker_processes_on_sqlite_do_each_effect_once(tmp_path: Path) -> None:
    _run_processes(f"sqlite:///{tmp_path}/threads.db", tmp_path / "effects.txt", workers=3, threads=60)


def test_a_killed_worker_leaves_nothing_repeated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/threads.db"
    effects = tmp_path / "effects.txt"
    ids = _launch_all(url, 30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    victim = subprocess.Popen([sys.executable, str(WORKLOAD), url, str(effects)], env=env)
    for _ in range(200):  # let it do some of the work, then kill it mid-flight
        if effects.exists() and len(effects.read_text().splitlines()) >= 5:
            break
        time.sleep(0.02)
    victim.kill()
    victim.wait()
    survivor = subprocess.Popen([sys.executable, str(WORKLOAD), url, str(effects)], env=env, stdout=subprocess.PIPE)
    try:
        wait_started(survivor)
        _wait_all_done(url, ids, timeout=60, settled=True)  # leases of the dead worker expire after 5 s
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.communicate(timeout=30)
    keys = [line.split()[0] for line in effects.read_text().splitlines()]
    assert len(keys) == len(set(keys))  # no effect repeated
    threads = _load_all(url, ids)
    for thread in threads:
        calls = [e.id for e in thread.events if e.type == "tool_call"]
        if thread.status == "done":
            assert [k for k in keys if k in calls] == calls  # its one effect happened once
        else:  # the kill hit between tool_started and the result: a person decides, nothing re-ran
            assert thread.status == "waiting_human" and thread.pending is not None
            assert thread.pending.data["reason"] == "outcome_unknown"  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
            assert sum(k in calls for k in keys) <= 1


def _load_all(url: str, ids: list[str]) -> list[Thread]:
    async def main() -> list[Thread]:
        runtime = Runtime(store=url)
        threads = [await runtime.get(i) for i in ids]
        await runtime.aclose()
        return threads

    return asyncio.run(main())


async def test_a_run_longer_than_the_lease_keeps_it_by_renewing(tmp_path: Path) -> None:
    calls: list[str] = []

    @tool
    async def migrate() -> str:
        """A long step: longer than the lease, which the worker must keep renewing meanwhile."""
        calls.append("migrate")
        await asyncio.sleep(4.5)
        return "migrated"

    def decide(messages: Sequence[Message]) -> str:
        return DONE if "<migrate_result>" in messages[-1].content else '{"intent": "migrate"}'

    url = f"sqlite:///{tmp_path}/threads.db"
    agent = Agent(name="m", model=ScriptedModel([decide] * 10), tools=[migrate])
    holder, rival = Runtime(store=url, agents=[agent]), Runtime(store=url, agents=[agent])
    thread_id = await holder.launch("m", Event("user_input", {"text": "migrate"}))
    stop = asyncio.Event()
    # Both look for work all the time; the rival would take the thread the moment the lease lapsed.
    workers = [asyncio.create_task(Worker(r, lease_seconds=2, poll_seconds=0.02).run(stop)) for r in (holder, rival)]
    for _ in range(3000):
        if (await holder.get(thread_id)).status == "done":
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*workers)
    thread = await holder.get(thread_id)
    assert thread.status == "done" and calls == ["migrate"]
    assert [e.type for e in thread.events].count("request_human_input") == 0  # never taken over mid-call
    await holder.aclose()
    await rival.aclose()


async def test_a_worker_rides_out_dropped_database_connections(postgres_url: str) -> None:
    import psycopg

    name = f"tl_{secrets.token_hex(4)}"  # this worker's connections, and no one else's, are cut
    url = f"{postgres_url}&application_name={name}"
    calls: list[str | None] = []

    @tool
    async def step(n: int) -> int:
        """One of three steps."""
        calls.append(idempotency_key())
        await asyncio.sleep(0.01)
        return n

    def decide(messages: Sequence[Message]) -> str:
        done = messages[-1].content.count("<step_result>")
        return DONE if done == 3 else f'{{"intent": "step", "n": {done}}}'

    runtime = Runtime(store=url, agents=[Agent(name="s", model=ScriptedModel([decide] * 1000), tools=[step])])
    ids = [await runtime.launch("s", Event("user_input", {"i": i})) for i in range(12)]
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(runtime, concurrency=4, poll_seconds=0.05, lease_seconds=5).run(stop))
    cuts = 0
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            seen = 0
            for _ in range(3000):
                statuses = [s.status for s in await patiently(partial(runtime.list, limit=100))]
                if statuses.count("done") == len(ids):
                    break
                if len(calls) > seen and cuts < 6:  # progress: cut every connection mid-work
                    seen = len(calls)
                    cursor = await admin.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                        (name,),
                    )
                    cut = await cursor.fetchone()
                    cuts += 1 if cut is not None and cut[0] > 0 else 0
                await asyncio.sleep(0.02)
        threads = [await patiently(partial(runtime.get, i)) for i in ids]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
        await runtime.aclose()
    assert cuts >= 3
    assert [t.status for t in threads] == ["done"] * len(ids)
    assert len(calls) == len(set(calls)) == 3 * len(ids)  # each step ran once
    for thread in threads:
        assert len({e.id for e in thread.events}) == len(thread)  # no event written twice


class _CountingWakes(Runtime):
    """A runtime that counts its looks for due sleepers."""

    wakes = 0

    async def wake_due(self, now: object = None) -> list[str]:
        self.wakes += 1
        return await super().wake_due()


async def test_a_serving_worker_looks_for_due_sleepers_once_a_poll_not_after_every_run(store: ThreadStore) -> None:
    runtime = _CountingWakes(store=store, agents=[Agent(name="a", model=ScriptedModel([DONE] * 12))])
    ids = [await runtime.launch("a", Event("user_input", {"i": i})) for i in range(12)]
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(runtime, concurrency=2, poll_seconds=3600).run(stop))
    for _ in range(1000):
        if [(await runtime.get(i)).status for i in ids] == ["done"] * 12:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert [(await runtime.get(i)).status for i in ids] == ["done"] * 12  # six rounds of two runs
    assert runtime.wakes == 1  # the first look; the next is due in an hour


async def test_a_worker_logs_each_run(caplog: pytest.LogCaptureFixture) -> None:
    # Before: nothing after the banner.
    runtime = Runtime(store="memory://", agents=[Agent(name="a", model=ScriptedModel([DONE]))])
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    with caplog.at_level(logging.INFO, logger="threadloom.worker"):
        await Worker(runtime).run_until_idle()
    [record] = [r for r in caplog.records if r.name == "threadloom.worker"]
    message = record.getMessage()
    assert thread_id in message and "agent a" in message and "ready -> done" in message and " ms" in message
