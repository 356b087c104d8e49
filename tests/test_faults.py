"""Fault tests with real processes: workers killed with SIGKILL at random points.

Each trial starts a worker process, waits until it is working, lets it run for a random moment
(before or after a model call, inside a tool between `tool_started` and its result, inside an
append) and kills it with SIGKILL. After all trials a clean worker finishes what is left. Then:
no torn thread (every thread loads, its events in order), no effect repeated (the tool writes
its effects outside the store), and every thread done or waiting for a person about an unknown
outcome. THREADLOOM_FAULT_TRIALS sets the number of kills per store (200 by default).
"""

import asyncio
import importlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from threadloom import Agent, Event, Runtime, Thread

WORKLOAD = Path(__file__).parent / "workers" / "deploy_workload.py"
TRIALS = int(os.environ.get("THREADLOOM_FAULT_TRIALS", "200"))


def _env(effects: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "THREADLOOM_LEASE_SECONDS": "1",
        "THREADLOOM_TOOL_DELAY": "0.02",
        "THREADLOOM_EFFECTS_FILE": str(effects),
    }


async def _launch(url: str, count: int) -> list[str]:
    runtime = Runtime(store=url)
    runtime.agents["recorder"] = _agent()
    ids = [await runtime.launch("recorder", Event("user_input", {"i": i})) for i in range(count)]
    await runtime.aclose()
    return ids


def _agent() -> Agent:
    sys.path.insert(0, str(WORKLOAD.parent))
    workload = importlib.import_module("deploy_workload")  # the worker processes' own agent
    return cast(Agent, workload.agent())


async def _load_all(url: str, ids: list[str]) -> list[Thread]:
    runtime = Runtime(store=url)
    threads = [await runtime.get(i) for i in ids]
    await runtime.aclose()
    return threads


def _start(url: str, effects: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKLOAD), url, str(effects)], env=_env(effects), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _kill_repeatedly(url: str, effects: Path, trials: int) -> None:
    rng = random.Random(trials)
    for _ in range(trials):
        victim = _start(url, effects)
        time.sleep(rng.uniform(0, 0.25))
        victim.kill()
        victim.communicate()


def _finish(url: str, effects: Path, ids: list[str]) -> list[Thread]:
    survivor = _start(url, effects)
    try:
        deadline = time.monotonic() + 120
        while True:
            threads = asyncio.run(_load_all(url, ids))
            if all(t.status in ("done", "waiting_human") for t in threads) or time.monotonic() > deadline:
                return threads
            time.sleep(0.2)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.communicate(timeout=30)


def _check(threads: list[Thread], effects: Path) -> None:
    keys = [line.split()[0] for line in effects.read_text().splitlines()] if effects.exists() else []
    assert len(keys) == len(set(keys)), "an effect was repeated"
    unknown = 0
    for thread in threads:
        assert thread.events[0].type == "user_input"  # loads whole, in order
        calls = [e.id for e in thread.events if e.type == "tool_call"]
        done = [k for k in keys if k in calls]
        if thread.status == "done":
            assert done == calls and len(calls) >= 1, thread.to_json()
        else:
            assert thread.status == "waiting_human", thread.to_json()
            assert thread.pending is not None and isinstance(thread.pending.data, dict)
            assert thread.pending.data["reason"] == "outcome_unknown"
            assert len(done) <= 1
            unknown += 1
    assert unknown < len(threads)


def _fault_run(url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.txt"
    ids = asyncio.run(_launch(url, max(60, TRIALS // 2)))
    _kill_repeatedly(url, effects, TRIALS)
    _check(_finish(url, effects, ids), effects)


def test_sigkill_at_random_points_on_sqlite(tmp_path: Path) -> None:
    _fault_run(f"sqlite:///{tmp_path}/threads.db", tmp_path)


def test_sigkill_at_random_points_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _fault_run(postgres_url, tmp_path)
