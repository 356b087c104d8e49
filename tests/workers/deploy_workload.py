"""A workload for worker tests: each thread calls `record_effect` once, then finishes.

Run as a worker process: `python deploy_workload.py STORE_URL EFFECTS_FILE`. Effects are appended
to a file outside the store, so a test can count them whatever happened to the workers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from threadloom import Agent, Runtime, Worker, tool
from threadloom.context import Message
from threadloom.intents import idempotency_key
from threadloom.models import ScriptedModel


@tool
def record_effect(label: str) -> str:
    """Do the one thing this thread must do exactly once."""
    with open(os.environ["THREADLOOM_EFFECTS_FILE"], "a") as effects:  # O_APPEND: whole lines from many processes
        effects.write(f"{idempotency_key()} {label}\n")
    return "recorded"


def decide(messages: Sequence[Message]) -> str:
    if "<record_effect_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "recorded"}'
    return '{"intent": "record_effect", "label": "x"}'


def agent() -> Agent:
    return Agent(name="recorder", model=ScriptedModel([decide] * 100_000), tools=[record_effect])


if __name__ == "__main__":
    url = sys.argv[1]
    os.environ["THREADLOOM_EFFECTS_FILE"] = sys.argv[2]
    Worker(Runtime(store=url, agents=[agent()]), concurrency=4, lease_seconds=5, poll_seconds=0.05).serve()
