"""An agent that never finishes: every step calls `tick`, which records its effect (see effects.py).

For shutdown tests: a worker running it can only stop by ending the run between two steps.
"""

from __future__ import annotations

from effects import record

from threadloom import Agent, tool
from threadloom.models import ScriptedModel

TICK = '{"intent": "tick", "n": 1}'


@tool
def tick(n: int) -> int:
    """One more step."""
    record(f"tick:{n}")
    return n


def agent() -> Agent:
    """The endless agent."""
    return Agent(name="endless", model=ScriptedModel([TICK] * 1_000_000), tools=[tick], max_steps=1_000_000)
