"""A workload for worker tests: each thread calls `record_effect` once, then finishes.

Run as a worker process: `python deploy_workload.py STORE_URL EFFECTS_FILE`. Effects are appended
to a file outside the store (see effects.py), so a test can count them whatever happened to the
workers. `THREADLOOM_LEASE_SECONDS`, `THREADLOOM_TOOL_DELAY` (seconds, the longest random pause
inside the tool) and `THREADLOOM_CONCURRENCY` tune it; the process prints `ready` once it handles
SIGTERM (a test must not signal it before).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Sequence

from effects import record

from threadloom import Agent, Runtime, Worker, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel


@tool
def record_effect(label: str) -> str:
    """Do the one thing this thread must do exactly once."""
    time.sleep(random.uniform(0, float(os.environ.get("THREADLOOM_TOOL_DELAY", "0"))))
    record(label)
    return "recorded"


def decide(messages: Sequence[Message]) -> str:
    if "<record_effect_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "recorded"}'
    return '{"intent": "record_effect", "label": "x"}'


def agent() -> Agent:
    return Agent(name="recorder", model=ScriptedModel([decide] * 100_000), tools=[record_effect])


async def serve(url: str) -> None:
    lease = float(os.environ.get("THREADLOOM_LEASE_SECONDS", "5"))
    concurrency = int(os.environ.get("THREADLOOM_CONCURRENCY", "4"))
    runtime = Runtime(store=url, agents=[agent()])
    worker = Worker(runtime, concurrency=concurrency, lease_seconds=lease, poll_seconds=0.02)
    await worker.runtime.store()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)  # only now may a test stop us with SIGTERM
    try:
        await worker.run(stop)
    finally:
        await worker.runtime.aclose()


if __name__ == "__main__":
    os.environ["THREADLOOM_EFFECTS_FILE"] = sys.argv[2]
    asyncio.run(serve(sys.argv[1]))
