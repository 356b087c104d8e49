"""Concurrency with real processes: many workers, many threads, duplicate deliveries; each effect once.

The tools used here record their effects outside the store (an append-only file), so a test can
count them whatever the workers and the store did.
"""

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

from threadloom import Agent, Event, Runtime, Thread
from threadloom.store import ThreadSummary
from workers.effects import read as read_effects
from workers.started import wait_started

WORKERS = Path(__file__).parent / "workers"
WORKLOAD = WORKERS / "deploy_workload.py"
THREADLOOM = str(Path(sys.executable).parent / "threadloom")  # the console script of this environment


def _workload_agent() -> Agent:
    sys.path.insert(0, str(WORKERS))
    workload = importlib.import_module("deploy_workload")  # the worker processes' own agent
    return cast(Agent, workload.agent())


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


async def _summaries(url: str) -> list[ThreadSummary]:
    async with Runtime(store=url) as runtime:
        return await runtime.list(limit=10_000)


async def _load(url: str, ids: list[str]) -> list[Thread]:
    async with Runtime(store=url) as runtime:
        return [await runtime.get(i) for i in ids]


def _wait_for(url: str, ids: list[str], ends: set[str], timeout: float = 240) -> None:
    """Wait until every thread's status is one of `ends` (the timeout only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {t.thread_id: t.status for t in asyncio.run(_summaries(url)) if t.thread_id in ids}
        if len(statuses) == len(ids) and set(statuses.values()) <= ends:
            return
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)


def test_four_worker_processes_on_postgres_run_500_threads_each_effect_once(tmp_path: Path, postgres_url: str) -> None:
    effects = tmp_path / "effects.txt"
    count = 500

    async def launch() -> list[str]:
        runtime = Runtime(store=postgres_url, agents=[_workload_agent()])
        try:
            return list(
                await asyncio.gather(*(runtime.launch("recorder", Event("user_input", {"i": i})) for i in range(count)))
            )
        finally:
            await runtime.aclose()

    ids = asyncio.run(launch())
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKLOAD), postgres_url, str(effects)],
            env=_env(THREADLOOM_CONCURRENCY="8"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            wait_started(proc)
        _wait_for(postgres_url, ids, {"done"})
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        errors = [proc.communicate(timeout=60)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, errors
    assert Counter(s.status for s in asyncio.run(_summaries(postgres_url))) == {"done": count}
    done = read_effects(effects)
    keys = {e.key for e in done}
    assert len(done) == count and len(keys) == count  # every thread's one effect, exactly once
    threads = asyncio.run(_load(postgres_url, ids))
    assert keys == {e.id for t in threads for e in t.events if e.type == "tool_call"}  # and the effect is its call's


async def _waiting_threads(url: str) -> dict[str, list[str] | str]:
    """Three threads of the `deliveries` agent, each waiting for one kind of resume delivery."""
    deliveries = importlib.import_module("deliveries")
    async with Runtime(store=url, agents=[cast(Agent, deliveries.agent())]) as runtime:
        ids = {
            k: await runtime.launch("deliveries", Event("user_input", {"kind": k}))
            for k in ("approve", "respond", "event")
        }
        await runtime.run_until_idle()
        threads = {k: await runtime.get(i) for k, i in ids.items()}
    assert {k: t.status for k, t in threads.items()} == {
        "approve": "waiting_approval",
        "respond": "waiting_human",
        "event": "sleeping",
    }
    approve, respond = threads["approve"].pending, threads["respond"].pending
    assert approve is not None and respond is not None
    return {"approve": [ids["approve"], approve.id], "respond": [ids["respond"], respond.id], "event": ids["event"]}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_thousand_duplicate_resume_deliveries_from_two_processes_have_one_effect(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/threads.db" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    effects = tmp_path / "effects.txt"
    monkeypatch.setenv("THREADLOOM_EFFECTS_FILE", str(effects))
    sys.path.insert(0, str(WORKERS))
    plan = asyncio.run(_waiting_threads(url))
    worker = subprocess.Popen(
        [THREADLOOM, "worker", "--store", url, "--agents", "deliveries:agent", "--poll-seconds", "0.1"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_started(worker, "worker on")
    # Two processes, each sending every delivery from 170 asyncio tasks at once, while the worker
    # resumes the threads: 1,020 resume deliveries (approve, respond, send_event) and 340 launches.
    senders = [
        subprocess.Popen(
            [sys.executable, str(WORKERS / "deliveries.py"), url, json.dumps(plan), "170"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        sent = [sender.communicate(timeout=180) for sender in senders]
        assert [s.returncode for s in senders] == [0, 0], [err for _, err in sent]
        launched = {thread_id for out, _ in sent for thread_id in out.split()}
        assert len(launched) == 1  # one launch key, one thread, whichever process asked
        ids = [plan["approve"][0], plan["respond"][0], str(plan["event"]), *launched]
        _wait_for(url, ids, {"done"})
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors

    labels = Counter(effect.label for effect in read_effects(effects))
    assert labels == {"started": 1, "ship": 1, "answered": 1, "finished": 1, "launched": 1}
    threads = asyncio.run(_load(url, ids))
    counts = [Counter(e.type for e in t.events) for t in threads]
    assert [counts[0]["approval"], counts[1]["human_response"], counts[2]["job_finished"]] == [1, 1, 1]
    assert len(asyncio.run(_summaries(url))) == 4


_SENDER = """
import sys
from threadloom import Event, Runtime

url, thread_id, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
failed = 0
with Runtime(store=url) as runtime:
    for i in range(count):
        try:
            runtime.send_event_sync(thread_id, Event("webhook", {"who": who, "i": i}))
        except Exception as exc:
            failed += 1
            print(f"failed: {exc}", file=sys.stderr)
print(failed)
"""


def _contend(url: str, tmp_path: Path) -> None:
    runtime = Runtime(store=url)
    thread_id = runtime.launch_sync("a", Event("user_input", "many writers"))
    runtime.close()
    script = tmp_path / "sender.py"
    script.write_text(_SENDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    senders = [
        subprocess.Popen(
            [sys.executable, str(script), url, thread_id, str(n), "60"], stdout=subprocess.PIPE, text=True, env=env
        )
        for n in range(6)
    ]
    failures = [int(p.communicate(timeout=600)[0].strip() or "-1") for p in senders]
    assert failures == [0] * 6  # before: 1-5% failed with "kept changing under 20 attempts"
    with Runtime(store=url) as runtime:
        thread = runtime.get_sync(thread_id)
    assert len(thread) == 1 + 6 * 60
    assert len({(e.data["who"], e.data["i"]) for e in thread.events[1:] if isinstance(e.data, dict)}) == 360


def test_six_processes_sending_to_one_thread_all_succeed_on_sqlite(tmp_path: Path) -> None:
    _contend(f"sqlite:///{tmp_path}/t.db", tmp_path)


def test_six_processes_sending_to_one_thread_all_succeed_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _contend(postgres_url, tmp_path)
