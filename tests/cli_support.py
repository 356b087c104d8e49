"""What the `threadloom` command's tests share: a support agent, threads made in a store, rows made unreadable.

The agent is importable as `cli_support:agent` (with tests/ on the path), so that `threadloom
threads render` and `threadloom worker` in another process load the same agent.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from pydantic import JsonValue

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel

TESTS = Path(__file__).parent
THREADLOOM = str(Path(sys.executable).parent / "threadloom")  # the console script of this environment
REFUND = '{"intent": "refund", "order_id": "A-1001", "amount_cents": 4599}'


@tool(policy="approval")
def refund(order_id: str, amount_cents: int) -> str:
    """Refund part or all of an order."""
    return f"refunded {amount_cents} cents on {order_id}"


def _decide(messages: Sequence[Message]) -> str:
    if "<refund_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "Refunded."}'
    return REFUND


def agent(name: str = "support") -> Agent:
    """The support agent: it proposes a refund, which waits for approval, and is done once it ran."""
    return Agent(name=name, model=ScriptedModel([_decide] * 100, name="gpt-4.1-mini"), tools=[refund])


def launch(url: str, *outputs: str, name: str = "support", text: str = "refund order A-1001") -> Thread:
    """A thread of an agent named `name` whose model answers `outputs` (the refund by default), run until it stops."""
    scripted = Agent(name=name, model=ScriptedModel(list(outputs or [REFUND]), name="gpt-4.1-mini"), tools=[refund])

    async def main() -> Thread:
        async with Runtime(store=url, agents=[scripted]) as runtime:
            thread_id = await runtime.launch(name, Event("support_ticket", {"text": text}))
            await runtime.run_until_idle()
            return await runtime.get(thread_id)

    return asyncio.run(main())


def store_thread(url: str, events: Sequence[Event], *, thread_id: str | None = None, agent: str = "support") -> Thread:
    """Write a thread of these events as it is (no agent runs)."""
    thread = Thread(list(events), thread_id=thread_id, metadata={"agent": agent})

    async def main() -> None:
        async with Runtime(store=url) as runtime:
            await (await runtime.store()).append(thread, after=0)

    asyncio.run(main())
    return thread


def get(url: str, thread_id: str) -> Thread:
    """The stored thread."""

    async def main() -> Thread:
        async with Runtime(store=url) as runtime:
            return await runtime.get(thread_id)

    return asyncio.run(main())


def corrupt(url: str, thread_id: str, seq: int, data: str = '{"text": "cut off') -> None:
    """Overwrite one event row's data with text that is not JSON, as a disk or a hand-edit might."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
            changed = db.execute("UPDATE events SET data = ? WHERE thread_id = ? AND seq = ?", (data, thread_id, seq))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            changed = db.execute(
                "UPDATE threadloom_events SET data = %s WHERE thread_id = %s AND seq = %s", (data, thread_id, seq)
            )
    assert changed.rowcount == 1


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `threadloom` command in a process of its own, tests/ importable, 80 columns."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]), "COLUMNS": "80"}
    environment.pop("THREADLOOM_STORE", None)
    return subprocess.run(
        [THREADLOOM, *args], capture_output=True, text=True, timeout=120, env={**environment, **(env or {})}, cwd=cwd
    )


def data_of(thread: Thread, event_type: str) -> JsonValue:
    """The data of the thread's last event of this type."""
    return [e for e in thread.events if e.type == event_type][-1].data
