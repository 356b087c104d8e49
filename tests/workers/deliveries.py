"""Threads that wait for each kind of resume delivery, and a process that delivers each one many times at once.

The agent `deliveries` runs four kinds of thread, told apart by the first event's `kind`:

- `approve`: proposes `ship` (policy "approval"); once approved, `ship` records its effect;
- `respond`: asks a person; after the answer, records `answered`;
- `event`: starts an outside job (records `started`) and sleeps; a `job_finished` event wakes it and
  it records `finished`;
- `launch`: records `launched`.

Each then says it is done. `python deliveries.py STORE_URL PLAN_JSON COPIES` sends, from COPIES
concurrent asyncio tasks per kind, the same approve / respond / send_event / launch, each kind with
its one idempotency key, then prints the ids of the threads its launches returned. PLAN_JSON is
`{"approve": [thread_id, call_id], "respond": [thread_id, request_id], "event": thread_id}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence

from effects import record

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel

DONE = '{"intent": "done_for_now", "message": "done"}'
KEYS = {"approve": "click:approve-1", "respond": "slack:respond-1", "event": "hook:job-1", "launch": "slack:launch-1"}


@tool(policy="approval")
def ship(order: str) -> str:
    """Ship an order (after a person approves)."""
    record("ship")
    return f"shipped {order}"


@tool
def record_effect(label: str) -> str:
    """Do the one thing this step must do exactly once."""
    record(label)
    return "recorded"


@tool(policy="external")
def start_job(job: str) -> str:
    """Start a long job elsewhere; its result arrives as an event."""
    record("started")
    return f"started {job}"


def _record(label: str) -> str:
    return json.dumps({"intent": "record_effect", "label": label})


def decide(messages: Sequence[Message]) -> str:
    """The model: reads the context, so any process decides the same."""
    context = messages[-1].content
    if "<record_effect_result>" in context or "<ship_result>" in context:
        return DONE
    if "kind: approve" in context:
        return '{"intent": "ship", "order": "o-1"}'
    if "kind: respond" in context:
        if "<human_response>" in context:
            return _record("answered")
        return '{"intent": "request_human_input", "question": "Ship it?"}'
    if "kind: event" in context:
        return _record("finished") if "<job_finished>" in context else '{"intent": "start_job", "job": "j-1"}'
    return _record("launched")


def agent() -> Agent:
    """The agent whose threads wait for deliveries."""
    return Agent(name="deliveries", model=ScriptedModel([decide] * 100_000), tools=[ship, record_effect, start_job])


async def deliver(url: str, plan: dict[str, list[str] | str], copies: int) -> list[str]:
    """Send every delivery of the plan `copies` times at once; the ids of the launched threads."""
    (approve_id, call_id), (respond_id, request_id), event_id = plan["approve"], plan["respond"], str(plan["event"])
    async with Runtime(store=url, agents=[agent()]) as runtime:
        sends: list[Awaitable[Thread | str]] = []
        for _ in range(copies):
            sends += [
                runtime.approve(approve_id, call_id, idempotency_key=KEYS["approve"]),
                runtime.respond(respond_id, request_id, "yes, ship it", idempotency_key=KEYS["respond"]),
                runtime.send_event(event_id, Event("job_finished", {"job": "j-1"}), idempotency_key=KEYS["event"]),
                runtime.launch("deliveries", Event("user_input", {"kind": "launch"}), idempotency_key=KEYS["launch"]),
            ]
        results = await asyncio.gather(*sends)
    return [r for r in results if isinstance(r, str)]


if __name__ == "__main__":
    launched = asyncio.run(deliver(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])))
    print(" ".join(sorted(set(launched))), flush=True)
