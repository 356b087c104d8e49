"""An agent that never finishes: every step calls `tick`, which records its effect (see effects.py).

For shutdown tests: a worker running it can only stop by ending the run between two steps. Each tick
takes 50 ms, so a worker needs seconds to reach the circuit breaker's 60 model calls a minute (a
`run_error` the shutdown tests are not about), however long the test takes to send its SIGTERM.
"""

from __future__ import annotations

import time

from effects import record

from threadloom import Agent, tool
from threadloom.models import ScriptedModel

TICK = '{"intent": "tick", "n": 1}'


@tool
def tick(n: int) -> int:
    """One more step."""
    record(f"tick:{n}")
    time.sleep(0.05)
    return n


def agent() -> Agent:
    """The endless agent."""
    return Agent(name="endless", model=ScriptedModel([TICK] * 1_000_000), tools=[tick], max_steps=1_000_000)
