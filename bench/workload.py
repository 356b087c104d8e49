"""The shared workload: an agent that calls a trivial tool N times in a row, then finishes.

Every framework in bench/ runs exactly this, driven by its own test model: the model's answer at
step i is "call `noop(i=i)`", and after N results it is "done". The tool returns `{"ok": i}`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from threadloom import Agent, Thread, tool
from threadloom.models import ScriptedModel

__all__ = ["build_agent", "noop", "run_memory", "summary", "timed_runs"]


@tool
async def noop(i: int) -> dict[str, int]:
    """Return what it was given (the trivial tool of the workload)."""
    return {"ok": i}


def outputs(n: int) -> list[str]:
    """The raw model outputs of one run: n tool calls, then done (as a model would write them)."""
    return [f'{{"intent": "noop", "i": {i}}}' for i in range(n)] + ['{"intent": "done_for_now", "message": "finished"}']


def build_agent(n: int, name: str = "loop") -> Agent:
    """An agent whose scripted model calls `noop` n times, then finishes."""
    return Agent(name=name, model=ScriptedModel(outputs(n)), tools=[noop], max_steps=n + 2)


def run_memory(n: int) -> Thread:
    """One in-memory run of n tool calls; returns the finished thread."""
    thread = build_agent(n).run_sync(Thread.start("user_input", {"text": f"call noop {n} times"}))
    assert thread.status == "done", thread.status
    return thread


def timed_runs(work: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of `work()` over `repeats` runs (after one warm-up run)."""
    work()
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def summary(per_step: list[float]) -> dict[str, float]:
    """Median, min and max of per-step times, in microseconds."""
    return {
        "median_us": statistics.median(per_step) * 1e6,
        "min_us": min(per_step) * 1e6,
        "max_us": max(per_step) * 1e6,
    }


if __name__ == "__main__":
    for n in (10, 100, 1000):
        t = timed_runs(lambda n=n: run_memory(n), 3)
        print(n, summary([x / n for x in t]))
    asyncio.run(asyncio.sleep(0))
