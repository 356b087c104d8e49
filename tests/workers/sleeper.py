"""An agent that waits a second with `wait_until`, then finishes: for durable-sleep tests across processes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from threadloom import Agent
from threadloom.context import Message
from threadloom.models import ScriptedModel


def decide(messages: Sequence[Message]) -> str:
    """Sleep for a second, the first time; once woken, finish."""
    if "<wake_up>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "slept"}'
    until = datetime.now(UTC) + timedelta(seconds=1)
    return json.dumps({"intent": "wait_until", "until": until.isoformat(), "reason": "the window opens"})


def agent() -> Agent:
    """The sleeper."""
    return Agent(name="sleeper", model=ScriptedModel([decide] * 100), can_wait=True)
