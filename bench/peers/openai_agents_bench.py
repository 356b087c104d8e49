"""The OpenAI Agents SDK on the workload: a fake `Model`, and its SQLiteSession when persisted."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from agents import Agent, RunConfig, Runner, SQLiteSession, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from harness import main
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText


@function_tool
async def noop(i: int) -> dict[str, int]:
    """Return what it was given."""
    return {"ok": i}


class FakeModel(Model):
    """Answers n tool calls, then a final message, as the SDK's own test fake does."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.step = 0

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.step += 1
        if self.step <= self.n:
            call = ResponseFunctionToolCall(
                type="function_call", name="noop", arguments=f'{{"i": {self.step - 1}}}', call_id=f"call_{self.step}"
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(type="output_text", text="finished", annotations=[])
        message = ResponseOutputMessage(id="msg", type="message", role="assistant", status="completed", content=[text])
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


_CONFIG = RunConfig(tracing_disabled=True)


async def _run(agent: Agent[Any], n: int, session: SQLiteSession | None) -> None:
    result = await Runner.run(agent, f"call noop {n} times", max_turns=n + 5, session=session, run_config=_CONFIG)
    assert result.final_output == "finished"


def make(n: int) -> Callable[[], None]:
    model = FakeModel(n)
    agent = Agent(name="loop", model=model, tools=[noop])

    def run() -> None:
        model.step = 0
        asyncio.run(_run(agent, n, None))

    return run


def run_persisted(n: int, path: str) -> None:
    session = SQLiteSession("t", path)
    try:
        asyncio.run(_run(Agent(name="loop", model=FakeModel(n), tools=[noop]), n, session))
    finally:
        session.close()


def version() -> dict[str, str]:
    return {"name": "OpenAI Agents SDK", "version": f"openai-agents {installed('openai-agents')}"}


if __name__ == "__main__":
    main(version, make, run_persisted)
