"""The shared workload: an agent that calls a trivial tool N times in a row, then finishes.

Every framework in bench/ runs exactly this, driven by its own test model: the model's answer at
step i is "call `noop(i=i)`", and after N results it is "done". The tool returns `{"ok": i}`.
"""

from __future__ import annotations

from threadloom import Agent, tool
from threadloom.models import ScriptedModel

__all__ = ["build_agent", "noop", "outputs"]


@tool
async def noop(i: int) -> dict[str, int]:
    """Return what it was given (the trivial tool of the workload)."""
    return {"ok": i}


def outputs(n: int) -> list[str]:
    """The raw model outputs of one run: n tool calls, then done (as a model would write them)."""
    return [f'{{"intent": "noop", "i": {i}}}' for i in range(n)] + ['{"intent": "done_for_now", "message": "finished"}']


def build_agent(n: int, name: str = "loop") -> Agent:
    """An agent whose scripted model calls `noop` n times, then finishes."""
    return Agent(name=name, model=ScriptedModel(outputs(n), keep_requests=False), tools=[noop], max_steps=n + 2)
