"""pydantic-ai on the workload, driven by its FunctionModel (no persistence of its own to compare)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from importlib.metadata import version as installed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import main
from pydantic_ai import Agent, UsageLimits
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


async def noop(i: int) -> dict[str, int]:
    """Return what it was given."""
    return {"ok": i}


def make(n: int) -> Callable[[], None]:
    step = 0

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal step
        step += 1
        if step <= n:
            return ModelResponse(parts=[ToolCallPart("noop", {"i": step - 1}, tool_call_id=f"call_{step}")])
        return ModelResponse(parts=[TextPart("finished")])

    agent = Agent(FunctionModel(answer), tools=[noop])
    limits = UsageLimits(request_limit=None)

    def run() -> None:
        nonlocal step
        step = 0
        result = asyncio.run(agent.run(f"call noop {n} times", usage_limits=limits))
        assert result.output == "finished"

    return run


def version() -> dict[str, str]:
    return {"name": "pydantic-ai", "version": f"pydantic-ai-slim {installed('pydantic-ai-slim')}"}


if __name__ == "__main__":
    main(version, make, None)
