"""threadloom's side of the peer comparison: same workload, same harness, its own ScriptedModel.

Run by bench/run.py as a subprocess (like the peers) so that memory is measured in a fresh process:
`python bench/bench_steps.py '{"mode": "memory", "sizes": [10, 100]}'`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from importlib.metadata import version as installed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "peers"))
sys.path.insert(0, str(Path(__file__).parent))

from harness import main  # pyright: ignore[reportMissingImports, reportUnknownVariableType]
from workload import build_agent, outputs

from threadloom import Event, RunLimits, Runtime, Thread
from threadloom.models import ScriptedModel


def make(n: int) -> Callable[[], None]:
    agent = build_agent(n)
    script = outputs(n)
    start = Thread.start("user_input", {"text": f"call noop {n} times"})

    def run() -> None:
        agent.model = ScriptedModel(script, keep_requests=False)
        assert agent.run_sync(start).status == "done"

    return run


def run_persisted(n: int, path: str) -> None:
    async def go() -> None:
        # The circuit breaker (60 model calls a minute by default) would pause a 1,000-step thread: the
        # bench measures the store path, so it lifts the bound.
        unbounded = RunLimits(model_calls_per_minute=10**9, tool_runs_per_minute=10**9)
        runtime = Runtime(store=f"sqlite:///{path}", agents=[build_agent(n)], limits=unbounded)
        thread_id = await runtime.launch("loop", Event("user_input", {"text": f"call noop {n} times"}))
        await runtime.run_until_idle()
        assert (await runtime.get(thread_id)).status == "done"
        await runtime.aclose()

    asyncio.run(go())


def version() -> dict[str, str]:
    return {"name": "threadloom", "version": f"threadloom {installed('threadloom')}"}


if __name__ == "__main__":
    main(version, make, run_persisted)
