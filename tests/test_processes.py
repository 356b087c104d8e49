"""Pause and resume across processes: launch in one, decide from the CLI in another, finish in a worker.

Every process here is a real one: the `threadloom` command of this environment, or a script under
tests/workers/. Tools record their effects outside the store (tests/workers/effects.py), so a test
sees which process did what, and how often.
"""

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from threadloom import Agent, Event, Runtime, Thread
from workers.effects import read as read_effects
from workers.started import wait_started

WORKERS = Path(__file__).parent / "workers"
THREADLOOM = str(Path(sys.executable).parent / "threadloom")  # the console script of this environment


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each durable kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/threads.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file tools record their effects in, here and in every process started from here."""
    path = tmp_path / "effects.txt"
    monkeypatch.setenv("THREADLOOM_EFFECTS_FILE", str(path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(WORKERS), *sys.path]))
    return path


def _worker(url: str, agents: str, poll_seconds: float) -> subprocess.Popen[str]:
    command = [THREADLOOM, "worker", "--store", url, "--agents", agents, "--poll-seconds", str(poll_seconds)]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_started(worker, "worker on")  # its banner: from now on SIGTERM stops it cleanly
    return worker


def _stop(worker: subprocess.Popen[str]) -> None:
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors


async def _get(url: str, thread_id: str) -> Thread:
    async with Runtime(store=url) as runtime:
        return await runtime.get(thread_id)


def _wait_until(url: str, thread_id: str, done: Callable[[Thread], bool], timeout: float = 120) -> Thread:
    """Wait for the stored thread to satisfy `done` (the timeout only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not done(thread := asyncio.run(_get(url, thread_id))):
        assert time.monotonic() < deadline, thread.to_json()
        time.sleep(0.05)
    return thread


def test_the_deploy_bot_is_launched_approved_with_the_cli_and_finished_by_a_worker(url: str, effects: Path) -> None:
    # Process 1: the app launches the thread; it prefetches the tags and stops before the deploy.
    launched = subprocess.run(
        [sys.executable, str(WORKERS / "deploy_agent.py"), url], capture_output=True, text=True, timeout=120
    )
    assert launched.returncode == 0, launched.stderr
    thread_id, status = launched.stdout.split()
    assert status == "waiting_approval" and read_effects(effects) == []

    # Process 3 is already waiting for work when the decision lands. On PostgreSQL it never polls
    # (one poll an hour): LISTEN/NOTIFY wakes it, or its first look finds the thread approved.
    worker = _worker(url, "deploy_agent:agent", poll_seconds=3600 if url.startswith("postgresql") else 0.1)
    try:
        # Process 2: a person approves from a shell; a retried command (same key) changes nothing.
        for _ in range(2):
            approved = subprocess.run(
                [THREADLOOM, "threads", "approve", thread_id, "--store", url, "--key", "review:42"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert approved.returncode == 0, approved.stderr
            assert f"thread {thread_id} is" in approved.stdout
        thread = _wait_until(url, thread_id, lambda t: t.status == "done")
    finally:
        _stop(worker)

    assert [e.type for e in thread.events] == [
        "slack_message",
        "tool_call", "tool_started", "tool_response",  # list_git_tags, prefetched in process 1
        "tool_call", "approval",  # deploy_backend proposed in process 1, approved in process 2
        "tool_started", "tool_response", "done_for_now",  # run by the worker, process 3
    ]  # fmt: skip
    [deploy] = read_effects(effects)
    assert (deploy.label, deploy.pid) == ("deploy:v1.2.3@production", worker.pid)
    assert deploy.key == thread.events[4].id  # the approved call's idempotency key


def test_an_idle_postgres_worker_is_woken_by_notify(postgres_url: str, effects: Path) -> None:
    async def launch(i: int) -> str:
        async with Runtime(store=postgres_url) as runtime:
            runtime.agents["recorder"] = _agent("deploy_workload")
            return await runtime.launch("recorder", Event("user_input", {"i": i}))

    first = asyncio.run(launch(1))
    worker = _worker(postgres_url, "deploy_workload:agent", poll_seconds=3600)
    try:
        # The worker listens before its first look for work, so once the first thread is done it
        # is listening. It would next poll in an hour: only a notification can bring it the second.
        _wait_until(postgres_url, first, lambda t: t.status == "done")
        second = asyncio.run(launch(2))
        _wait_until(postgres_url, second, lambda t: t.status == "done")
    finally:
        _stop(worker)
    assert [e.pid for e in read_effects(effects)] == [worker.pid, worker.pid]


def test_sigterm_ends_each_run_after_its_current_step_and_releases_the_thread(url: str, effects: Path) -> None:
    async def launch() -> str:
        async with Runtime(store=url) as runtime:
            runtime.agents["endless"] = _agent("endless")
            return await runtime.launch("endless", Event("user_input", {"text": "tick forever"}))

    thread_id = asyncio.run(launch())
    worker = _worker(url, "endless:agent", poll_seconds=0.1)
    try:
        _wait_until(url, thread_id, lambda t: [e.type for e in t.events].count("tool_response") >= 3)
    finally:
        _stop(worker)  # the thread never finishes: the worker exits only by ending the run between steps

    thread = asyncio.run(_get(url, thread_id))
    assert thread.status == "ready"
    assert thread.events[-1].type in ("tool_call", "tool_response")  # never stopped between tool_started and its result
    assert [e.key for e in read_effects(effects)] == _started(thread)  # each started call had its effect, once

    async def continue_elsewhere() -> Thread:
        async with Runtime(store=url, agents=[_agent("endless")]) as runtime:
            store = await runtime.store()
            assert await store.claim("another-worker", lease_seconds=30, limit=5) == [thread_id]  # released
            stop = asyncio.Event()
            stop.set()  # one more step, then stop
            return await runtime.run_thread(thread_id, stop=stop)

    continued = asyncio.run(continue_elsewhere())
    assert len(continued) > len(thread) and continued.events[: len(thread)] == thread.events
    assert [e.key for e in read_effects(effects)] == _started(continued)


def test_a_sleeping_thread_holds_no_process_and_a_worker_wakes_it_when_due(url: str, effects: Path) -> None:
    async def launch() -> Thread:
        async with Runtime(store=url, agents=[_agent("sleeper")]) as runtime:
            thread_id = await runtime.launch("sleeper", Event("user_input", {"text": "deploy when the window opens"}))
            await runtime.run_until_idle()
            return await runtime.get(thread_id)

    asleep = asyncio.run(launch())  # this process is gone when the time comes
    assert asleep.status == "sleeping" and asleep.state.wake_at is not None
    worker = _worker(url, "sleeper:agent", poll_seconds=0.1)
    try:
        thread = _wait_until(url, asleep.id, lambda t: t.status == "done")
    finally:
        _stop(worker)
    assert [e.type for e in thread.events] == ["user_input", "wait_until", "wake_up", "done_for_now"]
    assert thread.events[2].at >= asleep.state.wake_at


def _started(thread: Thread) -> list[str]:
    """The ids (idempotency keys) of the calls that were started: all but a last call not yet run."""
    calls = [e.id for e in thread.events if e.type == "tool_call"]
    return calls if thread.events[-1].type == "tool_response" else calls[:-1]


def _agent(module: str) -> Agent:
    """The agent a worker process imports as `module:agent`, imported here the same way."""
    if str(WORKERS) not in sys.path:
        sys.path.insert(0, str(WORKERS))
    return cast(Agent, importlib.import_module(module).agent())
