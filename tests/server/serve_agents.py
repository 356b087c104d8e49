"""The agents `threadloom serve` processes load in the server's process tests: `serve_agents:deploy_bot`.

The deploy waits for approval, then records its effect (tests/workers/effects.py: one line a run,
with the process id). With `THREADLOOM_TEST_GATE` set to a path, the deploy first creates
`PATH.running` and then waits for `PATH` to exist: a test holds a run inside its tool that way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from threadloom import Agent, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel
from workers.effects import record

__all__ = ["DEPLOY", "deploy_bot"]

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag to an environment."""
    gate = os.environ.get("THREADLOOM_TEST_GATE")
    if gate:
        Path(f"{gate}.running").touch()
        while not Path(gate).exists():  # the tool runs in a thread of its own: the server goes on
            time.sleep(0.01)
    record(f"deploy:{tag}@{environment}")
    return f"deployed {tag} to {environment}"


def _decide(messages: Sequence[Message]) -> str:
    if "<deploy_backend_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "Deployed."}'
    return DEPLOY


def deploy_bot() -> Agent:
    """The deploy bot: it proposes a deploy, which waits for approval, and is done once it ran."""
    return Agent(name="deploy_bot", model=ScriptedModel([_decide] * 10_000), tools=[deploy_backend])
