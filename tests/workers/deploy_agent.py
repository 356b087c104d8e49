"""The deploy bot for process tests: a scripted model, a prefetched tool and an approval tool.

`python deploy_agent.py STORE_URL` launches one thread from a Slack message and runs it until it
waits for approval, then prints the thread's id and status. A worker process runs it on with
`threadloom worker --agents deploy_agent:agent`. The deploy records its effect (see effects.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Literal

from effects import record

from threadloom import Agent, Event, Runtime, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel


@tool
def list_git_tags() -> list[str]:
    """The backend's git tags, newest first."""
    return ["v1.2.3", "v1.2.2"]


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag to an environment."""
    record(f"deploy:{tag}@{environment}")
    return f"deployed {tag} to {environment}"


def decide(messages: Sequence[Message]) -> str:
    """The model: reads the context, so whichever process runs the next step decides the same."""
    if "<deploy_backend_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "Deployed v1.2.3 to production."}'
    return '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'


def agent() -> Agent:
    """The deploy bot."""
    return Agent(
        name="deploy_bot",
        model=ScriptedModel([decide] * 100),
        tools=[deploy_backend],
        prefetch=[list_git_tags],
    )


async def launch(url: str) -> None:
    async with Runtime(store=url, agents=[agent()]) as runtime:
        message = Event("slack_message", {"channel": "#deploys", "text": "deploy the backend to production"})
        thread_id = await runtime.launch("deploy_bot", message, idempotency_key="slack:C1:1700000000.1")
        await runtime.run_until_idle()
        thread = await runtime.get(thread_id)
    print(thread_id, thread.status, flush=True)


if __name__ == "__main__":
    asyncio.run(launch(sys.argv[1]))
