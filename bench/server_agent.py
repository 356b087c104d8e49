"""The deploy workload for bench/bench_server.py, as `threadloom serve --agents server_agent:agent` runs it.

The scripted model proposes `deploy_backend` (policy "approval": the run stops before the tool);
once approved, the deploy appends its call's id to the file `BENCH_EFFECTS_FILE` names (one line a
run, O_APPEND: whole lines), and the model says it is done. LangGraph's graph in
bench/peers/langgraph_server/graph.py is the same workload.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from threadloom import Agent, tool
from threadloom.context import Message
from threadloom.intents import idempotency_key
from threadloom.models import ScriptedModel

__all__ = ["agent"]


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag to an environment."""
    with open(os.environ["BENCH_EFFECTS_FILE"], "a") as effects:
        effects.write(f"{idempotency_key()}\n")  # the call's id: the same call, the same line
    return f"deployed {tag} to {environment}"


def _decide(messages: Sequence[Message]) -> str:
    if "<deploy_backend_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "Deployed."}'
    return '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'


def agent() -> Agent:
    """The deploy bot of the benchmark."""
    return Agent(name="deploy_bot", model=ScriptedModel([_decide] * 1_000_000), tools=[deploy_backend])
